"""Settings of the auth service (``AUTH_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.config import Environment, ServiceSettings, refuse_placeholder

CsvList = Annotated[list[str], NoDecode]


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", populate_by_name=True)

    frontend_url: str = "http://localhost:8000"
    cookie_domain: str | None = None
    access_ttl_seconds: int = 3600
    refresh_ttl_seconds: int = 14 * 24 * 3600
    state_ttl_seconds: int = 600
    refresh_grace_seconds: int = 30
    # Directory of ``<kid>.pem`` private keys (a mounted Secret in production). Defaults to
    # ``<ECO2_DATA_DIR>/keys``; in development a key is generated there when none exists.
    keys_dir: Path | None = None
    active_key_id: str | None = None
    # Encrypts the successor token pair kept for the refresh grace window.
    secret_key: str = "dev-auth-secret-key"  # noqa: S105 - refused outside development below
    dev_login_enabled: bool = Field(
        default=False, validation_alias=AliasChoices("AUTH_DEV_LOGIN_ENABLED", "dev_login_enabled")
    )
    provider_timeout_seconds: float = 10.0
    # Unauthenticated endpoints, limited per client address and over all addresses per rolling
    # window (429 + Retry-After). Login starts write a state entry each: the global start limit
    # bounds the state store at login_global × ceil(state_ttl / window) entries (6000 by default).
    throttle_window_seconds: float = 60.0
    login_per_address: int = 60
    login_global: int = 600
    callback_per_address: int = 60
    callback_global: int = 600
    # Generous: every non-2xx refresh logs the client out (contract R5), and many users may share
    # one address behind a carrier NAT.
    refresh_per_address: int = 300
    refresh_global: int = 20000

    kakao_client_id: str | None = None
    kakao_client_secret: str | None = None
    kakao_authorize_url: str = "https://kauth.kakao.com/oauth/authorize"
    kakao_token_url: str = "https://kauth.kakao.com/oauth/token"  # noqa: S105 - a URL, not a secret
    kakao_profile_url: str = "https://kapi.kakao.com/v2/user/me"
    kakao_scope: str | None = None
    kakao_redirect_uris: CsvList = Field(default_factory=list)

    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
    google_profile_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    google_scope: str | None = "openid email profile"
    google_redirect_uris: CsvList = Field(default_factory=list)

    naver_client_id: str | None = None
    naver_client_secret: str | None = None
    naver_authorize_url: str = "https://nid.naver.com/oauth2.0/authorize"
    naver_token_url: str = "https://nid.naver.com/oauth2.0/token"  # noqa: S105 - a URL, not a secret
    naver_profile_url: str = "https://openapi.naver.com/v1/nid/me"
    naver_scope: str | None = None
    naver_redirect_uris: CsvList = Field(default_factory=list)

    @field_validator("kakao_redirect_uris", "google_redirect_uris", "naver_redirect_uris", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("frontend_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_guards(self) -> AuthSettings:
        if self.environment is Environment.PRODUCTION and self.dev_login_enabled:
            raise ValueError("AUTH_DEV_LOGIN_ENABLED must be false when ENVIRONMENT=production")
        refuse_placeholder(self.environment, "AUTH_SECRET_KEY", self.secret_key)
        return self
