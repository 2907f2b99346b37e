"""Settings of the info service (``INFO_*``): which news providers run, how often, and the fetch bounds.

A provider is on when its credentials are set (``INFO_NAVER_CLIENT_ID`` + ``INFO_NAVER_CLIENT_SECRET``,
``INFO_NEWSDATA_API_KEY``) or, for feeds, when listed in ``INFO_RSS_FEEDS`` (JSON:
``[{"id": "hani", "url": "https://…/rss", "name": "한겨레"}]``). With none of them, ``eco2 dev``
reads the project's sample feed (``INFO_SAMPLE_FEED``) so the news tab has articles offline.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.config import PLACEHOLDER_SECRETS, ServiceSettings
from services.info.categories import KOREAN_QUERIES, LATIN_QUERIES

SAMPLE_ID = "sample"  # the project's sample feed (development only)
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,23}$")]


class FeedConfig(BaseModel):
    id: SourceId  # the ``source`` value of its articles and of the ``source`` filter
    url: str  # http(s), or file: for a local file
    name: str | None = None  # publisher display name (``source_name``); else each link's domain
    page_images: bool = True  # fetch og:image for entries without an image
    interval_seconds: int | None = Field(default=None, ge=60)


class InfoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INFO_", extra="ignore", populate_by_name=True)

    naver_client_id: str | None = None
    naver_client_secret: str | None = None
    naver_base_url: str = "https://openapi.naver.com"
    naver_queries: list[str] = Field(default_factory=lambda: list(KOREAN_QUERIES))
    naver_display: int = Field(default=30, ge=1, le=100)
    naver_interval_seconds: int = Field(default=600, ge=60)

    newsdata_api_key: str | None = None
    newsdata_base_url: str = "https://newsdata.io"
    newsdata_endpoint: Literal["latest", "news"] = "latest"
    newsdata_country: str = "kr"
    newsdata_queries: list[str] = Field(default_factory=lambda: list(LATIN_QUERIES))
    # 5 queries every 30 min = 240 requests a day: check the plan's daily credits before lowering it.
    newsdata_interval_seconds: int = Field(default=1800, ge=60)

    rss_feeds: list[FeedConfig] = Field(default_factory=list)
    rss_interval_seconds: int = Field(default=900, ge=60)
    # Development only, and only when no provider is configured.
    sample_feed: bool = True

    # Schedule: each run is ``interval × (1 ± jitter)`` after the last success; after n failures in a
    # row ``min(max, base × 2^(n-1))`` (or the provider's Retry-After when longer).
    refresh_jitter: float = Field(default=0.1, ge=0, lt=1)
    backoff_base_seconds: float = Field(default=60, gt=0)
    backoff_max_seconds: float = Field(default=3600, gt=0)
    # A refresher holds a source for at most this long; a crashed one's claim lapses after it.
    lease_seconds: float = Field(default=300, gt=0)
    # How often an idle refresher looks again (sources claimed elsewhere, new schedule).
    poll_seconds: float = Field(default=30, gt=0)

    fetch_timeout_seconds: float = Field(default=15, gt=0)
    fetch_max_bytes: int = Field(default=5_000_000, gt=0)
    page_image_concurrency: int = Field(default=4, ge=1)
    page_image_timeout_seconds: float = Field(default=5, gt=0)
    page_image_max_bytes: int = Field(default=512_000, gt=0)
    page_image_budget_seconds: float = Field(default=60, gt=0)  # all pages of one run together
    # Networks fetches may reach besides the public internet (CIDR, comma-separated). Empty in
    # production; tests allow their loopback servers here.
    fetch_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    retention_days: int = Field(default=30, ge=0)  # 0 keeps everything
    first_page_cache_seconds: float = Field(default=60, ge=0)

    @field_validator("naver_client_id", "naver_client_secret", "newsdata_api_key", mode="before")
    @classmethod
    def _placeholder_is_unset(cls, value: object) -> object:
        """An empty value or the placeholder a fresh secret store holds (Terraform writes CHANGE_ME)
        means "this provider is not configured", not a key to try against the provider."""
        if isinstance(value, str) and value.strip().lower() in PLACEHOLDER_SECRETS | {"change_me"}:
            return None
        return value

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("naver_base_url", "newsdata_base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("rss_feeds")
    @classmethod
    def _unique(cls, feeds: list[FeedConfig]) -> list[FeedConfig]:
        ids = [f.id for f in feeds]
        taken = {"naver", "newsdata", "all"} & set(ids)
        if taken or len(set(ids)) != len(ids):
            raise ValueError(f"feed ids must be unique and not naver/newsdata/all: {ids}")
        return feeds

    @property
    def naver_enabled(self) -> bool:
        return bool(self.naver_client_id and self.naver_client_secret)

    @property
    def newsdata_enabled(self) -> bool:
        return bool(self.newsdata_api_key)


def source_ids(settings: InfoSettings, *, development: bool) -> list[str]:
    """The configured sources' ids, in refresh order: what the feed's ``source`` filter accepts and
    what the refresher runs (``providers.configured_sources`` builds their adapters)."""
    ids = [name for name, on in (("naver", settings.naver_enabled), ("newsdata", settings.newsdata_enabled)) if on]
    ids += [feed.id for feed in settings.rss_feeds]
    if not ids and development and settings.sample_feed:
        ids.append(SAMPLE_ID)
    return ids
