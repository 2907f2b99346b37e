"""Settings of the location service (``LOCATION_*``; the provider switch also reads the contract's
unprefixed ``PLACE_SEARCH_PROVIDER``)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


class LocationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LOCATION_", extra="ignore", populate_by_name=True)

    # Optional external place search (docs/api.md, locations: search). Unset → search and suggest answer from our data only.
    place_search_provider: Literal["kakao"] | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "PLACE_SEARCH_PROVIDER", "LOCATION_PLACE_SEARCH_PROVIDER", "place_search_provider"
        ),
    )
    kakao_rest_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAKAO_REST_API_KEY", "LOCATION_KAKAO_REST_API_KEY", "kakao_rest_api_key"),
    )
    kakao_local_base_url: str = "https://dapi.kakao.com"
    provider_timeout_seconds: float = 3.0
    # Sites whose rendered entry stays in memory for /centers (≈ 0.7 KB each; 0 disables; entries.py).
    entry_cache_size: int = Field(default=50_000, ge=0)
    # ``eco2 dev`` loads the project's sample sites into an empty table so the map works at once.
    seed_sample_data: bool = True

    @field_validator("place_search_provider", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
            return None
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("kakao_local_base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def provider_enabled(self) -> bool:
        return self.place_search_provider == "kakao" and bool(self.kakao_rest_api_key)
