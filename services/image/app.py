"""The image service's FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app import ServiceApp
from services.common.jobs.worker import sweep_forever
from services.common.runtime import ServiceRuntime
from services.image.config import ImageSettings
from services.image.router import internal, router
from services.image.service import ImageService
from services.registry import SERVICES

SERVICE = SERVICES["image"]


@asynccontextmanager
async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: ImageSettings) -> AsyncIterator[None]:
    service = ImageService.create(runtime.common, settings)
    app.state.images = service
    runtime.ready_checks["blobs"] = service.store.ping
    runtime.on_close(service.store.close)  # the S3 store's aiohttp session for its reads
    assert runtime.db is not None
    db, stop = runtime.db, asyncio.Event()
    # Every replica sweeps; the work is idempotent (delete + mark rejected).
    task = asyncio.create_task(
        sweep_forever(lambda: service.sweep_pending(db), settings.sweep_interval_seconds, stop, name="pending_sweep")
    )
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task


create_app = ServiceApp(
    SERVICE,
    ImageSettings,
    routers=[router],
    internal=[internal],
    lifespan=lifespan,
    description="Presigned uploads, verification of uploaded images, the image-URL allow-list.",
)
