"""Settings of the scan service (``SCAN_*``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.ai import OpenAIConfig
from services.common.config import CommonSettings, Environment, ServiceSettings, refuse_placeholder
from services.common.ratelimit import RateLimit

OFFLINE_MODEL = "eco2-offline"


class ScanSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCAN_", extra="ignore", populate_by_name=True)

    # Model provider: an OpenAI-compatible endpoint when both a key and models are set (OpenAI:
    # base URL unset; Gemini: https://generativelanguage.googleapis.com/v1beta/openai/; a local VLM
    # server: its /v1 URL). Otherwise the offline provider classifies from the user's note only.
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    # Model ids a client may pick with ``model``; the first is the default (docs/api.md, scan: submission).
    models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    llm_timeout_seconds: float = 40.0
    llm_max_retries: int = 2
    llm_output_attempts: int = 2
    llm_max_concurrency: int = 256

    # Internal call: the image service (allow-list + first-use verification). Unset →
    # PUBLIC_API_BASE_URL, where the dev gateway serves every service.
    image_service_url: str | None = None
    image_timeout_seconds: float = 5.0
    # An operator can switch the reward feature off: no scan is then eligible (docs/api.md, scan: reward).
    rewards_enabled: bool = True

    rate_per_window: int = 6
    rate_window_seconds: float = 60.0
    rate_per_day: int = 100
    rate_timezone: str = "Asia/Seoul"
    idempotency_ttl_seconds: int = 24 * 3600

    job_deadline_seconds: float = 120.0
    # Results and event logs are kept at least 24 h after completion (docs/api.md, scan: submission), then purged.
    retention_seconds: int = 26 * 3600
    worker_concurrency: int = 256
    max_deliveries: int = 5
    sweep_interval_seconds: float = 5.0
    requeue_after_seconds: float = 30.0

    sse_keepalive_seconds: float = 15.0
    sse_max_seconds: float = 300.0

    @field_validator("models", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _guards(self) -> ScanSettings:
        if self.llm_api_key is not None and self.environment is not Environment.DEVELOPMENT:
            refuse_placeholder(self.environment, "SCAN_LLM_API_KEY", self.llm_api_key)
        return self

    @property
    def uses_model(self) -> bool:
        return bool(self.llm_api_key and self.models)

    @property
    def allowed_models(self) -> tuple[str, ...]:
        return tuple(self.models) if self.uses_model else (OFFLINE_MODEL,)

    def openai_config(self) -> OpenAIConfig:
        assert self.llm_api_key is not None
        return OpenAIConfig(
            base_url=self.llm_base_url,
            api_key=self.llm_api_key,
            models=tuple(self.models),
            timeout_seconds=self.llm_timeout_seconds,
            max_retries=self.llm_max_retries,
            output_attempts=self.llm_output_attempts,
            max_concurrency=self.llm_max_concurrency,
        )

    def rate_limit(self) -> RateLimit:
        return RateLimit(self.rate_per_window, self.rate_window_seconds, self.rate_per_day, self.rate_timezone)

    def image_base(self, common: CommonSettings) -> str:
        return (self.image_service_url or common.public_api_base_url).rstrip("/")
