"""``eco2 worker info-refresh``: refresh every configured news source on its schedule.

In production this is its own Deployment (any number of replicas: each source's lease lets one
refresh it at a time, see ``refresh.py``); ``eco2 dev`` runs it as a task of the one process.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from services.common.clock import utcnow
from services.common.config import CommonSettings
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.common.safehttp import SafeHttpClient
from services.info.config import InfoSettings
from services.info.models import SCHEMA
from services.info.providers import configured_sources
from services.info.refresh import Refresher
from services.info.thumbnails import PageImages

log = get_logger("eco2.info.worker")


@asynccontextmanager
async def news_refresher(
    common: CommonSettings,
    settings: InfoSettings | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    rng: Callable[[], float] = random.random,
) -> AsyncIterator[Refresher]:
    """A refresher over the configured sources, with its database, key-value store and HTTP client
    (``clock`` and ``rng`` are the schedule's "now" and jitter draw, fixed by tests)."""
    settings = settings or InfoSettings()
    runtime = ServiceRuntime(SCHEMA, SCHEMA, common)
    http = SafeHttpClient(
        timeout=settings.fetch_timeout_seconds,
        max_bytes=settings.fetch_max_bytes,
        max_concurrency=settings.page_image_concurrency,
        allow_networks=settings.fetch_allow_networks,
    )
    try:
        assert runtime.db is not None
        pages = PageImages(
            http,
            timeout=settings.page_image_timeout_seconds,
            max_bytes=settings.page_image_max_bytes,
            budget=settings.page_image_budget_seconds,
        )
        sources = configured_sources(settings, http, development=common.is_development)
        yield Refresher(runtime.db, runtime.kv, sources, settings, pages, clock=clock, rng=rng)
    finally:
        await http.aclose()
        await runtime.close()


async def run_news_refresher(
    common: CommonSettings, stop: asyncio.Event, *, settings: InfoSettings | None = None
) -> None:
    async with news_refresher(common, settings) as refresher:
        if not refresher.sources:
            log.warning("news_refresher_idle", reason="no news source configured (see docs/info.md)")
            await stop.wait()
            return
        await refresher.run(stop)
