"""Settings of the chat service's core (``CHAT_*``): limits, deadlines, retention, the assistant to load.

The assistant (``services/chat/agent/``) has its own settings class under the same prefix; its names
contain LLM, WEATHER, SEARCH, IMAGE_GENERATION or TOOL, so the two never read each other's variables
by accident (``CHAT_IMAGE_SERVICE_URL`` is the one shared on purpose: both may call the image service).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.config import CommonSettings, ServiceSettings
from services.common.ratelimit import RateLimit

# docs/api.md, chat: sending a message — the client always sends one of these; configuration maps
# them to real providers (the assistant's ``CHAT_MODELS``), falling back to its default provider.
ALWAYS_ACCEPTED_MODELS = ("gpt-5.2", "gemini-3-flash-preview")


class ChatSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", populate_by_name=True)

    # ``module:function(common) -> Assistant``, loaded lazily by the worker (docs/chat.md). Missing
    # or broken: the worker logs why at start-up and every job ends ``failed`` with LLM_UNAVAILABLE.
    assistant: str = "services.chat.agent:build_assistant"
    # Model ids accepted besides the two aliases above (the assistant decides what they mean).
    extra_models: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # The image service answers the allow-list + first-use verification of ``image_url`` (as for
    # scan). Unset → PUBLIC_API_BASE_URL, where the dev gateway serves every service.
    image_service_url: str | None = None
    image_timeout_seconds: float = 5.0

    rate_per_window: int = 10
    rate_window_seconds: float = 60.0
    rate_per_day: int = 300
    rate_timezone: str = "Asia/Seoul"

    # Every job ends with ``done`` within this many seconds of submission (CHAT_TIMEOUT otherwise).
    job_deadline_seconds: float = 240.0
    # ``needs_input``: how long a job waits for ``POST /chat/{job_id}/input``.
    input_timeout_seconds: float = 30.0
    # Event logs are kept ≥ 1 h after ``done`` (docs/api.md, SSE event data); job rows as long.
    retention_seconds: int = 2 * 3600
    # Soft-deleted chats (hidden at once) are purged with their messages after this long.
    purge_deleted_after_seconds: int = 24 * 3600
    # Earlier messages handed to the assistant as context (it fits them into its token budget).
    history_messages: int = 40

    worker_concurrency: int = 256
    max_deliveries: int = 5
    sweep_interval_seconds: float = 5.0
    # A running job holds a lease it renews; a worker that dies stops renewing and the sweeper hands
    # the job to another worker once the lease has run out.
    lease_seconds: float = 15.0
    requeue_after_seconds: float = 30.0

    sse_keepalive_seconds: float = 15.0
    sse_max_seconds: float = 300.0

    @field_validator("extra_models", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def accepted_models(self) -> frozenset[str]:
        """The two client aliases, ``CHAT_EXTRA_MODELS``, and the aliases the assistant's map names."""
        return frozenset((*ALWAYS_ACCEPTED_MODELS, *self.extra_models, *assistant_aliases()))

    def rate_limit(self) -> RateLimit:
        return RateLimit(self.rate_per_window, self.rate_window_seconds, self.rate_per_day, self.rate_timezone)

    def image_base(self, common: CommonSettings) -> str:
        return (self.image_service_url or common.public_api_base_url).rstrip("/")


def assistant_aliases() -> tuple[str, ...]:
    """The aliases of the assistant's ``CHAT_LLM_MODELS`` map (none while the assistant is absent)."""
    try:
        from services.chat.agent.config import AgentSettings
    except ImportError:
        return ()
    return tuple(AgentSettings().llm_models)
