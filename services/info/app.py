"""The info service's FastAPI app: the news feed and the item dictionary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app import ServiceApp
from services.common.knowledge import knowledge_base
from services.common.runtime import ServiceRuntime
from services.info.config import InfoSettings, source_ids
from services.info.dictionary import ItemDictionary
from services.info.router import router
from services.info.service import NewsFeed
from services.registry import SERVICES


@asynccontextmanager
async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: InfoSettings) -> AsyncIterator[None]:
    assert runtime.db is not None
    # The API never calls a provider: it serves what the refresher worker stored.
    feed = NewsFeed(
        runtime.db,
        runtime.kv,
        source_ids(settings, development=runtime.common.is_development),
        cache_seconds=settings.first_page_cache_seconds,
    )
    feed.cache.start()  # drops its pages when the refresher announces a change
    runtime.on_close(feed.cache.aclose)
    app.state.news = feed
    app.state.items = ItemDictionary(knowledge_base())  # the knowledge scan and chat use
    yield


create_app = ServiceApp(
    SERVICES["info"],
    InfoSettings,
    routers=[router],
    lifespan=lifespan,
    description="News feed from the configured providers (keyset pages) and the household item dictionary.",
)
