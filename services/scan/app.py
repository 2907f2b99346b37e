"""The scan service's FastAPI app, and the wiring it shares with the scan worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from services.common.ai import ModelProvider, OfflineProvider, OpenAICompatibleProvider
from services.common.app import create_service_app
from services.common.blobs import BlobSettings, create_blob_store
from services.common.config import CommonSettings
from services.common.db import Database
from services.common.jobs import create_job_log, create_job_queue
from services.common.knowledge import knowledge_base
from services.common.ratelimit import create_rate_limiter
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES
from services.scan.config import ScanSettings
from services.scan.pipeline import ScanPipeline
from services.scan.router import router
from services.scan.service import ScanService

SERVICE = SERVICES["scan"]


@asynccontextmanager
async def scan_components(
    common: CommonSettings,
    settings: ScanSettings,
    db: Database,
    *,
    http: httpx.AsyncClient | None = None,
    blob_settings: BlobSettings | None = None,
) -> AsyncIterator[ScanService]:
    """Everything a scan process holds: model provider, event log, queue, limiter, HTTP client."""
    kb = knowledge_base()  # validates the knowledge base: a broken data file stops start-up here
    image_api = SERVICES["image"].public_url(common.public_api_base_url)  # serves the embedded blob store
    async with AsyncExitStack() as stack:

        def closing(close: Callable[[], Awaitable[None]]) -> None:
            stack.push_async_callback(close)

        provider: ModelProvider
        if settings.uses_model:
            openai = OpenAICompatibleProvider(kb, settings.openai_config())
            closing(openai.close)
            provider = openai
        else:
            provider = OfflineProvider(kb)
        if http is None:
            http = httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=100))
            closing(http.aclose)
        events = create_job_log(common, SERVICE.name, settings.retention_seconds)
        closing(events.close)
        queue = create_job_queue(common, SERVICE.name, settings.max_deliveries)
        closing(queue.close)
        limiter = create_rate_limiter(common, SERVICE.name, settings.rate_limit())
        closing(limiter.close)
        blobs = create_blob_store(common, blob_settings or BlobSettings(), image_api)
        closing(blobs.close)
        pipeline = ScanPipeline(
            settings=settings,
            db=db,
            events=events,
            provider=provider,
            kb=kb,
            blobs=blobs,
            http=http,
            internal_token=common.internal_token,
        )
        yield ScanService(pipeline, queue, limiter, settings.image_base(common))


def create_app(
    common: CommonSettings | None = None,
    settings: ScanSettings | None = None,
    *,
    http: httpx.AsyncClient | None = None,
    blob_settings: BlobSettings | None = None,
) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or ScanSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        assert runtime.db is not None
        async with scan_components(common, settings, runtime.db, http=http, blob_settings=blob_settings) as service:
            app.state.scan = service
            runtime.ready_checks["job_events"] = service.events.ping
            yield

    return create_service_app(
        SERVICE,
        common=common,
        routers=[router],
        lifespan=lifespan,
        description="Photo → classification → disposal rule → guidance → reward, with live progress over SSE.",
    )
