"""The my service's FastAPI app (public prefix ``/api/v1/users``, the path the client knows)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app import ServiceApp
from services.common.cache import InvalidatedCache
from services.common.runtime import ServiceRuntime
from services.my.config import MySettings
from services.my.router import internal, router
from services.my.service import PROFILE_CHANNEL, MyService, ProfileView
from services.registry import SERVICES


@asynccontextmanager
async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: MySettings) -> AsyncIterator[None]:
    assert runtime.db is not None
    cache: InvalidatedCache[ProfileView] = InvalidatedCache(
        runtime.kv,
        channel=PROFILE_CHANNEL,
        ttl=settings.profile_cache_ttl_seconds,
        max_size=settings.profile_cache_size,
    )
    cache.start()
    runtime.on_close(cache.aclose)
    app.state.settings = settings
    app.state.my = MyService(runtime.db, runtime.revocations, cache, refresh_ttl_seconds=settings.refresh_ttl_seconds)
    yield


create_app = ServiceApp(
    SERVICES["my"],
    MySettings,
    routers=[router],
    internal=[internal],
    lifespan=lifespan,
    description="Profiles, owned characters and points.",
)
