"""The image service's FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.config import CommonSettings
from services.common.events import wait_any
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.image.config import ImageSettings
from services.image.router import internal, router
from services.image.service import ImageService
from services.registry import SERVICES

SERVICE = SERVICES["image"]
log = get_logger("eco2.image")


def create_app(common: CommonSettings | None = None, settings: ImageSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or ImageSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        service = ImageService.create(common, settings)
        app.state.images = service
        runtime.ready_checks["blobs"] = service.store.ping
        stop = asyncio.Event()

        async def sweeper() -> None:
            # Every replica sweeps; the work is idempotent (delete + mark rejected).
            assert runtime.db is not None
            while not stop.is_set():
                try:
                    await service.sweep_pending(runtime.db)
                except Exception as exc:
                    log.warning("pending_sweep_failed", error=repr(exc))
                await wait_any(settings.sweep_interval_seconds, stop)

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return create_service_app(
        SERVICE,
        common=common,
        routers=[router],
        internal=[internal],
        lifespan=lifespan,
        description="Presigned uploads, verification of uploaded images, the image-URL allow-list.",
    )
