"""CPU per call of the scan read paths' ownership and result reads: PostgreSQL (the database read
that stream open and ``GET …/result`` did for every request) beside the job's event log (the owner
written with ``queued`` and the log's last entry, one Redis script call).

    uv run python bench/scan_reads.py [--calls 2000] [--concurrency 16]

One process, the scan service as the API builds it (``services.scan.app.create_app``), on its own
database on the local PostgreSQL and a key prefix on the local Redis (removed afterwards). ``--calls``
finished jobs (rows with a stored result, logs with ``queued`` … ``done``) are read ``--concurrency``
at a time; the CPU this process spends (``time.process_time``) divided by the calls is printed beside
the wall time. The servers' own CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan_env import Env


async def measure(label: str, calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with semaphore:
            await call()

    await asyncio.gather(*(one(c) for c in calls[:50]))  # warm pools and caches
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"  {label:<58} {cpu / len(calls) * 1e6:6.0f} µs CPU/call  {wall / len(calls) * 1e6:6.0f} µs wall/call")


async def run(env: Env, count: int, concurrency: int) -> None:
    from asgi_lifespan import LifespanManager
    from sqlalchemy import insert

    from services.common.clock import utcnow
    from services.common.config import CommonSettings
    from services.common.jobs import event_data
    from services.scan.app import create_app
    from services.scan.config import ScanSettings
    from services.scan.service import JOBS, ScanService

    os.environ.update(env.vars)  # the settings the benchmark's API processes get
    app = create_app(common=CommonSettings(), settings=ScanSettings())
    async with LifespanManager(app, startup_timeout=60):
        service: ScanService = app.state.scan
        now = utcnow()
        jobs: list[tuple[uuid.UUID, str]] = []
        result = {"status": "completed", "message": "라벨을 떼고 헹궈서 페트병으로 버려 주세요.", "reward": None,
                  "pipeline_result": {"classification_result": {"major": "플라스틱", "minor": "페트병"},
                                      "final_answer": {"answer": "라벨을 떼고 헹궈서 버려요. " * 8}}}  # fmt: skip
        rows = []
        for _ in range(count):
            job_id, user_id = uuid.uuid4(), uuid.uuid4()
            jobs.append((user_id, str(job_id)))
            rows.append({"id": job_id, "user_id": user_id, "image_url": "https://cdn.eco2.bench/x.png",
                         "image_key": "x", "image_type": "image/png", "user_input": "", "model": "fake-vlm",
                         "status": "completed", "stage": "done", "progress": 100, "checkpoint": {},
                         "result": result | {"job_id": str(job_id)}, "created_at": now, "deadline_at": now,
                         "enqueued_at": now, "completed_at": now})  # fmt: skip
            await service.events.append(
                str(job_id), "queued", event_data(str(job_id), "queued", "completed", 0), owner=str(user_id)
            )
            await service.events.append(
                str(job_id), "done", event_data(str(job_id), "done", "completed", 100, rows[-1]["result"])
            )
        async with service.db.transaction() as conn:
            await conn.execute(insert(JOBS), rows)

        async def pg_result(user_id: uuid.UUID, job_id: str) -> Any:
            return await service.result_view(await service.owned_job(user_id, job_id, with_result=True))

        print(f"scan read paths, {count} finished jobs, {concurrency} at a time")
        for label, call in (
            ("stream open: PostgreSQL owned_job (before)", service.owned_job),
            ("stream open: event log owner + backlog (stream_job)", service.stream_job),
            ("result: PostgreSQL owned_job(with_result) + result_view", pg_result),
            ("result: event log `done` (ScanService.result)", service.result),
        ):
            await measure(label, [lambda c=call, u=u, j=j: c(u, j) for u, j in jobs], concurrency)  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    env = Env(worker_concurrency=1, vision=0, answer=0, rate_per_window=1000)
    try:
        env.create_database("scan")
        asyncio.run(run(env, args.calls, args.concurrency))
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
