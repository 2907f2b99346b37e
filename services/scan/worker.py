"""``eco2 worker scan``: consume the scan job queue and run the pipeline; sweep overdue jobs.

In production this is its own Deployment (scale with replicas; each holds up to
``SCAN_WORKER_CONCURRENCY`` jobs, which mostly wait on model calls). ``eco2 dev`` runs it as a task.
"""

from __future__ import annotations

import asyncio

import httpx

from services.common.blobs import BlobSettings
from services.common.config import CommonSettings
from services.common.jobs import run_job_worker
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.scan.app import SERVICE, scan_components
from services.scan.config import ScanSettings

log = get_logger("eco2.scan.worker")


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
            await run_job_worker(
                service.queue,
                service.pipeline.run,
                stop,
                concurrency=settings.worker_concurrency,
                sweep=service.sweep,
                sweep_interval=settings.sweep_interval_seconds,
            )
    finally:
        await runtime.close()
