"""``eco2 worker scan``: consume the scan job queue and run the pipeline; sweep overdue jobs.

In production this is its own Deployment (scale with replicas; each holds up to
``SCAN_WORKER_CONCURRENCY`` jobs, which mostly wait on model calls). ``eco2 dev`` runs it as a task.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from services.common.blobs import BlobSettings
from services.common.config import CommonSettings
from services.common.events import wait_any
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.scan.app import SERVICE, scan_components
from services.scan.config import ScanSettings
from services.scan.service import ScanService

log = get_logger("eco2.scan.worker")


async def sweep_forever(service: ScanService, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await service.sweep()
        except Exception as exc:
            log.warning("scan_sweep_failed", error=repr(exc))
        await wait_any(service.settings.sweep_interval_seconds, stop)


async def run_scan_worker(
    common: CommonSettings,
    stop: asyncio.Event,
    *,
    settings: ScanSettings | None = None,
    http: httpx.AsyncClient | None = None,
    blob_settings: BlobSettings | None = None,
) -> None:
    settings = settings or ScanSettings()
    runtime = ServiceRuntime(SERVICE.name, SERVICE.name, common)
    try:
        assert runtime.db is not None
        async with scan_components(common, settings, runtime.db, http=http, blob_settings=blob_settings) as service:
            log.info(
                "scan_worker_started", concurrency=settings.worker_concurrency, provider=service.pipeline.provider.name
            )
            done = asyncio.Event()  # the sweeper's own stop: never stop the caller's other workers
            sweeper = asyncio.create_task(sweep_forever(service, done))
            try:
                await service.queue.consume(service.pipeline.run, stop, settings.worker_concurrency)
            finally:
                done.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
    finally:
        await runtime.close()
