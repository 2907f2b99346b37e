"""Settings of the my service (``MY_*``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


class MySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MY_", extra="ignore", populate_by_name=True)

    # The auth cookies are cleared on account deletion exactly as auth sets them, so these two are
    # read from auth's variables (one value per deployment) unless overridden here.
    cookie_domain: str | None = Field(
        default=None, validation_alias=AliasChoices("MY_COOKIE_DOMAIN", "AUTH_COOKIE_DOMAIN", "cookie_domain")
    )
    refresh_ttl_seconds: int = Field(
        default=14 * 24 * 3600,
        validation_alias=AliasChoices("MY_REFRESH_TTL_SECONDS", "AUTH_REFRESH_TTL_SECONDS", "refresh_ttl_seconds"),
    )
    # Upper bound on how long a profile stays in a process's memory if an invalidation message was
    # lost; every write also invalidates it explicitly, in this process and (via pub/sub) in others.
    profile_cache_ttl_seconds: float = 30.0
    profile_cache_size: int = 50_000
