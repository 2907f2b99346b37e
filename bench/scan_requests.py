"""CPU per request of scan's read endpoints through the whole service app — middleware, routing,
authentication, the handler — without sockets: ``GET /api/v1/scan/{id}/result`` and
``GET /api/v1/scan/{id}/events`` (replay of a finished job: 8 frames, then the stream closes).

    uv run python bench/scan_requests.py [--jobs 800] [--rounds 3] [--concurrency 16]

One process, the scan app as ``eco2 serve scan`` builds it, driven as ASGI calls (no uvicorn, no
client sockets), on its own database on the local PostgreSQL and a key prefix on the local Redis
(removed afterwards). ``--jobs`` finished jobs of as many users; each round requests every job once
(so each token's revocation re-read is due, as for a user's requests seconds apart); the CPU of
this process (``time.process_time``) per request is printed per round. The servers' CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan_env import Env, tokens


async def call(app: Any, path: str, headers: dict[str, str]) -> int:
    """One GET through the app; returns the status once the response is complete."""
    complete = asyncio.Event()
    status = 0
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body"):
            complete.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "state": {},
        "headers": [(b"host", b"127.0.0.1"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    return status


async def run(env: Env, count: int, rounds: int, concurrency: int) -> None:
    import jwt
    from asgi_lifespan import LifespanManager
    from sqlalchemy import insert

    from services.common.clock import utcnow
    from services.common.config import CommonSettings
    from services.common.jobs import event_data
    from services.scan.app import create_app
    from services.scan.config import ScanSettings
    from services.scan.service import JOBS

    os.environ.update(env.vars)
    users = tokens(env, count)
    app = create_app(common=CommonSettings(), settings=ScanSettings())
    async with LifespanManager(app, startup_timeout=60):
        service = app.state.scan
        now = utcnow()
        jobs, rows = [], []
        result = {"status": "completed", "message": "라벨을 떼고 헹궈서 페트병으로 버려 주세요.", "reward": None,
                  "pipeline_result": {"final_answer": {"answer": "라벨을 떼고 헹궈서 버려요. " * 8}}}  # fmt: skip
        for headers in users:
            claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
            job_id, user_id = str(uuid.uuid4()), uuid.UUID(claims["sub"])
            jobs.append((headers, job_id))
            rows.append({"id": uuid.UUID(job_id), "user_id": user_id, "image_url": "https://cdn.eco2.bench/x.png",
                         "image_key": "x", "image_type": "image/png", "user_input": "", "model": "fake-vlm",
                         "status": "completed", "stage": "done", "progress": 100, "checkpoint": {},
                         "result": result | {"job_id": job_id}, "created_at": now, "deadline_at": now,
                         "enqueued_at": now, "completed_at": now})  # fmt: skip
            await service.events.append(
                job_id, "queued", event_data(job_id, "queued", "completed", 0), owner=str(user_id)
            )
            for stage in ("vision", "rule", "answer"):
                await service.events.append_many(job_id, [(stage, event_data(job_id, stage, "started", 10)),
                                                          (stage, event_data(job_id, stage, "completed", 50))])  # fmt: skip
            await service.events.append(
                job_id, "done", event_data(job_id, "done", "completed", 100, rows[-1]["result"])
            )
        async with service.db.transaction() as conn:
            await conn.execute(insert(JOBS), rows)

        semaphore = asyncio.Semaphore(concurrency)

        async def one(path: str, headers: dict[str, str]) -> None:
            async with semaphore:
                status = await call(app, path, headers)
                assert status == 200, (path, status)

        print(f"scan requests through the app, {count} finished jobs of {count} users, {concurrency} at a time")
        for round_ in range(rounds + 1):  # round 0 warms up (first verification of every token)
            for label, template in (
                ("GET …/result", "/api/v1/scan/{}/result"),
                ("GET …/events", "/api/v1/scan/{}/events"),
            ):
                cpu = time.process_time()
                await asyncio.gather(*(one(template.format(job), headers) for headers, job in jobs))
                cpu = time.process_time() - cpu
                if round_:
                    print(f"  round {round_}  {label:<14} {cpu / count * 1e6:6.0f} µs CPU/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    env = Env(worker_concurrency=1, vision=0, answer=0, rate_per_window=1000)
    try:
        env.create_database("scan")
        import uvloop  # as uvicorn runs the service

        uvloop.run(run(env, args.jobs, args.rounds, args.concurrency))
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
