"""The info service's FastAPI app: the news feed and the item dictionary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.config import CommonSettings
from services.common.runtime import ServiceRuntime
from services.info.config import InfoSettings
from services.info.providers import source_ids
from services.info.router import router
from services.info.service import NewsFeed
from services.registry import SERVICES

SERVICE = SERVICES["info"]


def create_app(common: CommonSettings | None = None, settings: InfoSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or InfoSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        assert runtime.db is not None
        # The API never calls a provider: it serves what the refresher worker stored.
        feed = NewsFeed(
            runtime.db,
            runtime.kv,
            source_ids(settings, development=common.is_development),
            cache_seconds=settings.first_page_cache_seconds,
        )
        feed.start()

        async def stop_feed() -> None:
            feed.stop()

        runtime.on_close(stop_feed)
        app.state.news = feed
        yield

    return create_service_app(
        SERVICE,
        common=common,
        routers=[router],
        lifespan=lifespan,
        description="News feed from the configured providers (keyset pages) and the household item dictionary.",
    )
