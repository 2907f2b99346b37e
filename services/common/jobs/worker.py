"""A job worker's main loop: consume the work queue and, beside it, sweep on an interval.

Every job service (scan, chat) runs the same shape: handlers pull job ids from the queue
(``concurrency`` at a time, a raising handler gets the job again later) while a sweeper ends jobs
past their deadline, re-enqueues stuck ones and purges what is past retention.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from services.common.events import wait_any
from services.common.jobs.queue import JobHandler, JobQueue
from services.common.logging import get_logger
from services.common.metrics import JOB_DELIVERIES, JOB_QUEUE_DEPTH, JOB_SWEEP_SUCCESS, JOBS_IN_PROGRESS

log = get_logger("eco2.jobs")


async def sweep_forever(
    sweep: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event, *, name: str = "job_sweep"
) -> None:
    """Call ``sweep`` every ``interval`` seconds until ``stop``; a failing pass is logged and retried."""
    while not stop.is_set():
        try:
            await sweep()
        except Exception as exc:
            log.warning(f"{name}_failed", error=repr(exc))
        await wait_any(interval, stop)


async def run_job_worker(
    queue: JobQueue,
    handle: JobHandler,
    stop: asyncio.Event,
    *,
    concurrency: int,
    sweep: Callable[[], Awaitable[None]],
    sweep_interval: float,
) -> None:
    """Consume ``queue`` with ``handle`` and sweep every ``sweep_interval`` seconds, until ``stop``.

    Metrics (labelled with ``queue.service``): deliveries by outcome, jobs in progress, the queue's
    depth and the time of the last successful sweep, sampled after each sweep."""
    service = queue.service
    ok, failed, running = JOB_DELIVERIES(service, "ok"), JOB_DELIVERIES(service, "failed"), JOBS_IN_PROGRESS(service)

    async def observed(job_id: str, delivery: int) -> None:
        running.inc()
        try:
            await handle(job_id, delivery)
        except BaseException:
            failed.inc()
            raise
        finally:
            running.dec()
        ok.inc()

    async def observed_sweep() -> None:
        await sweep()
        JOB_SWEEP_SUCCESS(service).set_to_current_time()
        depth = await queue.depth()
        if depth is not None:
            JOB_QUEUE_DEPTH(service).set(depth)

    done = asyncio.Event()  # the sweeper's own stop: never stop the caller's other workers
    sweeper = asyncio.create_task(sweep_forever(observed_sweep, sweep_interval, done))
    try:
        await queue.consume(observed, stop, concurrency)
    finally:
        done.set()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
