"""Settings of the character service (``CHARACTER_*``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


class CharacterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CHARACTER_", extra="ignore", populate_by_name=True)

    # Images are ``{cdn_base_url}/character/{cdn_code}.png`` (docs/api.md, character); unset → ``image_url: null``.
    cdn_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CHARACTER_CDN_BASE_URL", "CDN_BASE_URL", "cdn_base_url")
    )
    catalog_max_age_seconds: int = 300

    @field_validator("cdn_base_url")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None
