"""The location service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.common.app import ServiceApp
from services.common.runtime import ServiceRuntime
from services.location.config import LocationSettings
from services.location.provider import KakaoLocal, PlaceSearch
from services.location.reads import ReadSessions
from services.location.router import internal, router
from services.location.sample import seed_if_empty
from services.location.service import LocationService
from services.registry import SERVICES

SERVICE = SERVICES["location"]


@asynccontextmanager
async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: LocationSettings) -> AsyncIterator[None]:
    provider: PlaceSearch | None = None
    if settings.provider_enabled:
        assert settings.kakao_rest_api_key is not None
        http = httpx.AsyncClient(timeout=settings.provider_timeout_seconds)
        runtime.on_close(http.aclose)
        provider = KakaoLocal(
            http,
            base_url=settings.kakao_local_base_url,
            api_key=settings.kakao_rest_api_key,
            timeout=settings.provider_timeout_seconds,
        )
    app.state.locations = LocationService(provider, entry_cache_size=settings.entry_cache_size)
    if runtime.db is not None:
        reads = ReadSessions(runtime.db)
        runtime.on_close(reads.dispose)
        app.state.location_reads = reads
    if runtime.common.is_development and settings.seed_sample_data and runtime.db is not None:
        await seed_if_empty(runtime.db)
    yield


create_app = ServiceApp(
    SERVICE,
    LocationSettings,
    routers=[router],
    internal=[internal],
    lifespan=lifespan,
    description="Drop-off sites: nearby search, keyword search and suggestions.",
)
