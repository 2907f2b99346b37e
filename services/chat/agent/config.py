"""Settings of the assistant (``CHAT_*``; every name holds LLM, TOOL, WEATHER, SEARCH or IMAGE, so none
can clash with the chat service's own settings).

A model is used when ``CHAT_LLM_API_KEY`` and a model id (``CHAT_LLM_MODEL`` or an alias entry) are
set; otherwise the offline answerer replies. A provider key that is empty or still a placeholder
(Terraform's ``CHANGE_ME`` until an operator sets the SSM parameter) counts as unset, so a fresh
deployment answers offline instead of failing at start-up. ``CHAT_LLM_MODELS`` maps the client's aliases to real
model ids: ``gpt-5.2=gpt-4o-mini,gemini-3-flash-preview=gemini-2.0-flash`` or the JSON object form;
an alias that is not mapped gets the default model ``CHAT_LLM_MODEL``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.config import (
    PLACEHOLDER_SECRETS,
    CommonSettings,
    Environment,
    ServiceSettings,
    refuse_placeholder,
)

CLIENT_ALIASES = ("gpt-5.2", "gemini-3-flash-preview")


class AgentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", populate_by_name=True)

    llm_base_url: str | None = None  # unset: api.openai.com; any OpenAI-compatible /v1 URL
    llm_api_key: str | None = None
    llm_model: str | None = None  # the default model id
    llm_models: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)  # alias → model id
    llm_timeout_seconds: float = 60.0
    llm_max_retries: int = 1
    llm_max_concurrency: int = 512
    llm_temperature: float = 0.3
    llm_max_tool_rounds: int = 4
    # Earlier turns kept as context (estimated tokens); older ones are summarised into one line.
    llm_history_tokens: int = 3000
    llm_turn_tokens: int = 800  # one earlier turn is cut to this

    # Internal APIs of the services the tools read. Unset → PUBLIC_API_BASE_URL (the dev gateway).
    tool_location_url: str | None = None
    tool_my_url: str | None = None
    tool_image_url: str | None = None
    tool_timeout_seconds: float = 3.0

    # Weather: the KMA short-term forecast (data.go.kr); off without a key.
    weather_base_url: str = "https://apis.data.go.kr/1360000/VilageFcstInfoService_2.0"
    weather_api_key: str | None = None
    weather_timeout_seconds: float = 3.0

    # Web search: a SearXNG-compatible JSON endpoint; off unless a base URL is set.
    search_base_url: str | None = None
    search_api_key: str | None = None
    search_timeout_seconds: float = 5.0

    # Image generation: off by default; uses the LLM endpoint's images API with this model.
    image_generation_enabled: bool = False
    image_generation_model: str = "gpt-image-1"

    @field_validator("llm_api_key", "weather_api_key", "search_api_key", mode="before")
    @classmethod
    def _placeholder_is_unset(cls, value: object) -> object:
        """An empty value or the placeholder a fresh secret store holds (Terraform writes CHANGE_ME)
        means "this provider is not configured": offline answers, not a key tried against a provider
        (the same reading as info's provider keys)."""
        if isinstance(value, str) and value.strip().lower().replace("_", "-") in PLACEHOLDER_SECRETS | {"change-me"}:
            return None
        return value

    @field_validator("llm_models", mode="before")
    @classmethod
    def _alias_map(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("CHAT_LLM_MODELS: alias=model pairs separated by commas, or a JSON object")
            return {alias.strip(): model.strip() for alias, model in pairs}
        return value

    @model_validator(mode="after")
    def _guards(self) -> AgentSettings:
        if self.llm_api_key is not None and self.environment is not Environment.DEVELOPMENT:
            refuse_placeholder(self.environment, "CHAT_LLM_API_KEY", self.llm_api_key)
        return self

    @property
    def default_model(self) -> str | None:
        return self.llm_model or next(iter(self.llm_models.values()), None)

    @property
    def uses_model(self) -> bool:
        return bool(self.llm_api_key and self.default_model)

    def model_for(self, alias: str | None) -> str:
        """The real model id for a client's alias; unknown or unmapped aliases get the default."""
        default = self.default_model
        assert default is not None
        return self.llm_models.get(alias or "", default)

    def base(self, url: str | None, common: CommonSettings) -> str:
        return (url or common.public_api_base_url).rstrip("/")
