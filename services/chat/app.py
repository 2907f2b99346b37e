"""The chat service's FastAPI app, and the wiring it shares with the chat worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from services.chat.config import ChatSettings
from services.chat.jobs import ChatJobs
from services.chat.router import router
from services.chat.service import ChatService
from services.common.app import ServiceApp
from services.common.config import CommonSettings
from services.common.db import Database
from services.common.jobs import create_job_log, create_job_queue
from services.common.ratelimit import create_rate_limiter
from services.common.runtime import ServiceRuntime
from services.common.uploads import ImageResolver
from services.registry import SERVICES

SERVICE = SERVICES["chat"]


@asynccontextmanager
async def chat_jobs(common: CommonSettings, settings: ChatSettings, db: Database) -> AsyncIterator[ChatJobs]:
    """The job store every chat process holds: event log and work queue on the shared machinery."""
    async with AsyncExitStack() as stack:
        events = create_job_log(common, SERVICE.name, settings.retention_seconds)
        stack.push_async_callback(events.close)
        queue = create_job_queue(common, SERVICE.name, settings.max_deliveries)
        stack.push_async_callback(queue.close)
        yield ChatJobs(settings, db, events, queue)


@asynccontextmanager
async def chat_components(
    common: CommonSettings, settings: ChatSettings, db: Database, *, http: httpx.AsyncClient | None = None
) -> AsyncIterator[ChatService]:
    """What the API holds: the job store, the rate limiter and the image check."""
    async with AsyncExitStack() as stack:

        def closing(close: Callable[[], Awaitable[None]]) -> None:
            stack.push_async_callback(close)

        if http is None:
            http = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))
            closing(http.aclose)
        jobs = await stack.enter_async_context(chat_jobs(common, settings, db))
        limiter = create_rate_limiter(common, SERVICE.name, settings.rate_limit())
        closing(limiter.close)
        images = ImageResolver(
            http,
            SERVICES["image"].internal_url(settings.image_base(common), "/resolve"),
            common.internal_token,
            settings.image_timeout_seconds,
        )
        yield ChatService(settings, jobs, limiter, images)


def create_app(
    common: CommonSettings | None = None, settings: ChatSettings | None = None, *, http: httpx.AsyncClient | None = None
) -> FastAPI:
    chosen = settings or ChatSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: ChatSettings) -> AsyncIterator[None]:
        assert runtime.db is not None
        async with chat_components(runtime.common, settings, runtime.db, http=http) as service:
            app.state.chat = service
            runtime.ready_checks["job_events"] = service.jobs.events.ping
            yield

    return ServiceApp(
        SERVICE,
        ChatSettings,
        routers=[router],
        lifespan=lifespan,
        description="Conversations with 이코, the sorting assistant: answers streamed as SSE tokens.",
    )(common, chosen)
