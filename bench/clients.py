"""CPU per call of the scan worker's I/O clients, the current path beside the candidate one.

    uv run python bench/clients.py [--calls 400] [--concurrency 32] [--only model,s3,redis,postgres,rabbit]
                                   [--image-bytes 80]

Each client is driven ``--calls`` times, ``--concurrency`` at a time, from this process; the CPU this
process spends (``time.process_time``: every thread, so boto3's worker threads count) divided by the
calls is printed in µs per call, beside the wall time. The servers are separate processes and not
counted: the fake model (tests/support/fake_openai.py, no latency) and moto's S3 server are started
here; Redis and RabbitMQ are the local ones (ECO2_BENCH_REDIS_URL / ECO2_BENCH_RABBITMQ_URL), used under
a key prefix and queue names of this run, removed afterwards.

- model: one structured completion (``OpenAICompatibleProvider._complete``), SDK over httpx vs aiohttp;
- s3: the vision stage's image read, boto3 ``get_object`` in a thread vs a locally signed GET URL
  fetched with the shared async HTTP client (``S3BlobStore.read``);
- redis: ``RedisJobEventLog.append_many`` of two events (a stage's completed + the next one's started);
- postgres: the worker's claim through SQLAlchemy's ``execute`` vs on the asyncpg connection
  (``Database.driver``), in a database of this run (PostgreSQL: ECO2_BENCH_PG_ADMIN_URL), dropped after;
- rabbit: ``RabbitJobQueue`` publish, then consume + ack of the same jobs (CPU per job, both sides).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scan_env import PG_ADMIN, RABBIT, REDIS, free_port, wait_http  # noqa: E402

Call = Callable[[int], Awaitable[Any]]


async def measure(label: str, call: Call, calls: int, concurrency: int) -> float:
    """Run ``call(i)`` for i < calls, ``concurrency`` at a time; print and return CPU µs per call."""
    for i in range(min(calls, concurrency * 2)):  # warm-up: connections, caches, imports
        await call(i)
    index = iter(range(calls))

    async def lane() -> None:
        for i in index:
            await call(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    per_call = cpu / calls * 1e6
    print(f"  {label:<44} {per_call:8.0f} µs CPU/call   {wall / calls * 1e6:8.0f} µs wall/call", flush=True)
    return per_call


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def bench_model(calls: int, concurrency: int, image: bytes) -> None:
    import base64

    from services.common.ai import OpenAICompatibleProvider, OpenAIConfig
    from services.common.knowledge.base import knowledge_base
    from services.common.model_client import ModelClient

    port = free_port()
    server = spawn(
        "-m", "tests.support.fake_openai", "--port", str(port), "--vision-latency", "0", "--answer-latency", "0"
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        kb = knowledge_base()
        url = f"data:image/png;base64,{base64.b64encode(image).decode()}"
        messages = [{"role": "system", "content": "classify"},
                    {"role": "user", "content": [{"type": "text", "text": "생수병"},
                                                 {"type": "image_url", "image_url": {"url": url}}]}]  # fmt: skip
        print(f"model (one completion, {len(image)} B image)")
        for label, transport in (("SDK default client", ""), ("SDK over httpx, sized pool", "httpx"),
                                 ("SDK over aiohttp, sized pool (deployed)", "aiohttp")):  # fmt: skip
            config = OpenAIConfig(f"http://127.0.0.1:{port}/v1", "bench", ("fake-vlm",), max_concurrency=256,
                                  transport=transport or "httpx")  # fmt: skip
            provider = OpenAICompatibleProvider(kb, config)
            if not transport:  # the SDK's own default HTTP client
                await provider.close()
                provider._client = ModelClient(base_url=config.base_url, api_key=config.api_key,
                                               timeout=config.timeout_seconds, max_retries=config.max_retries)  # fmt: skip
            schema = provider.classification_schema()
            try:
                await measure(label, lambda _, p=provider, s=schema:
                              p._complete("classification", "fake-vlm", messages, s), calls, concurrency)  # fmt: skip
            finally:
                await provider.close()
    finally:
        server.terminate()
        server.wait()


async def bench_s3(calls: int, concurrency: int, image: bytes) -> None:
    import boto3

    from services.common.blobs import BlobSettings, S3BlobStore

    port = free_port()
    server = spawn("-m", "moto.server", "-H", "127.0.0.1", "-p", str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/")
        endpoint, bucket = f"http://127.0.0.1:{port}", f"bench-{uuid.uuid4().hex[:8]}"
        creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="ap-northeast-2", **creds)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        keys = [f"scan/{uuid.uuid4().hex}.png" for _ in range(64)]
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=image, ContentType="image/png")
        settings = BlobSettings(s3_bucket=bucket, s3_endpoint_url=endpoint, s3_access_key_id="bench",
                                s3_secret_access_key="bench")  # fmt: skip
        store = S3BlobStore(settings, "http://cdn.invalid")
        print(f"s3 (read of a {len(image)} B object)")
        assert store._signs_locally()
        try:
            await measure("boto3 get_object in a thread", lambda i: asyncio.to_thread(
                lambda: s3.get_object(Bucket=bucket, Key=keys[i % 64])["Body"].read()), calls, concurrency)  # fmt: skip
            await measure("S3BlobStore.read (deployed)", lambda i: store.read(keys[i % 64]), calls, concurrency)
            await measure(
                "  of which: signing the GET URL",
                lambda i: asyncio.sleep(0, store.presign_get(keys[i % 64])),
                calls,
                concurrency,
            )
        finally:
            await store.close()
    finally:
        server.terminate()
        server.wait()


async def bench_redis(calls: int, concurrency: int) -> None:
    from services.common.jobs.eventlog import RedisJobEventLog, event_data

    prefix = f"bench-clients-{uuid.uuid4().hex[:8]}:"
    log = RedisJobEventLog(REDIS, prefix, "scan", 60)
    result = {"classification": {"major_category": "재활용폐기물", "middle_category": "무색페트병"}}
    print("redis (append_many of two events)")
    try:

        async def append(i: int) -> Any:
            job = f"job-{i}"
            return await log.append_many(job, [("vision", event_data(job, "vision", "completed", 40, result)),
                                               ("rule", event_data(job, "rule", "started", 40))])  # fmt: skip

        await measure("RedisJobEventLog.append_many", append, calls, concurrency)
    finally:
        keys = [k async for k in log.client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await log.client.delete(*keys[start : start + 500])
        await log.close()


async def bench_postgres(calls: int, concurrency: int) -> None:
    import asyncpg

    from services.common.clock import utcnow
    from services.common.db import Database
    from services.scan.models import Base, Job
    from services.scan.pipeline import CLAIM, _driver_statements

    name = f"eco2_bench_clients_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}", "scan")
    print("postgres (the worker's claim: UPDATE … RETURNING the job row)")
    try:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE SCHEMA scan")
            await conn.run_sync(Base.metadata.create_all)
        total = calls + 2 * concurrency  # every claim (warm-up included) finds its own queued job
        now, ids = utcnow(), [uuid.uuid4() for _ in range(2 * total)]
        row = {"user_id": uuid.uuid4(), "image_url": "u", "image_key": "k", "image_type": "image/png",
               "user_input": "", "model": "m", "status": "queued", "stage": "queued", "progress": 0,
               "checkpoint": {}, "created_at": now, "deadline_at": now, "enqueued_at": now}  # fmt: skip
        async with db.transaction() as conn:
            await conn.execute(Job.__table__.insert(), [{"id": key, **row} for key in ids])
        claim = _driver_statements(db.engine.dialect).claim
        for_execute, for_driver = iter(ids[:total]), iter(ids[total:])

        async def execute(_: int) -> Any:
            async with db.autocommit() as conn:
                return (await conn.execute(CLAIM, {"key": next(for_execute)})).first()

        async def driver(_: int) -> Any:
            async with db.driver() as pg:
                return await pg.fetchrow(claim.sql, *claim.args({"key": next(for_driver)}))

        await measure("SQLAlchemy execute, autocommit connection", execute, calls, concurrency)
        await measure("Database.driver + DriverStatement", driver, calls, concurrency)
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


async def bench_rabbit(calls: int, concurrency: int) -> None:
    from services.common.jobs.queue import RabbitJobQueue

    queue = RabbitJobQueue(RABBIT, f"bench-clients-{uuid.uuid4().hex[:8]}.jobs", 5, "scan")
    print("rabbit (publish, then consume + ack, per job)")
    try:
        await measure("RabbitJobQueue.enqueue", lambda i: queue.enqueue(f"job-{i}"), calls, concurrency)
        total = calls + min(calls, concurrency * 2)
        seen = 0
        stop = asyncio.Event()

        async def handler(job_id: str, delivery: int) -> None:
            nonlocal seen
            seen += 1
            if seen >= total:
                stop.set()

        cpu, wall = time.process_time(), time.perf_counter()
        await queue.consume(handler, stop, concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"  {'RabbitJobQueue.consume + ack':<44} {cpu / total * 1e6:8.0f} µs CPU/call   "
              f"{wall / total * 1e6:8.0f} µs wall/call", flush=True)  # fmt: skip
    finally:
        await queue.delete()
        await queue.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400, help="measured calls per client (default 400)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    parser.add_argument("--only", default="model,s3,redis,postgres,rabbit", help="comma-separated subset")
    parser.add_argument("--image-bytes", type=int, default=0,
                        help="image size for model and s3 (default: the load benchmark's 80 B PNG)")  # fmt: skip
    args = parser.parse_args()
    from services.common.logging import configure_logging

    configure_logging("WARNING")  # the same log lines on both paths; kept out of the figures
    from tests.support.images import PNG

    image = PNG + os.urandom(max(0, args.image_bytes - len(PNG)))
    only = set(args.only.split(","))
    if "model" in only:
        await bench_model(args.calls, args.concurrency, image)
    if "s3" in only:
        await bench_s3(args.calls, args.concurrency, image)
    if "redis" in only:
        await bench_redis(args.calls, args.concurrency)
    if "postgres" in only:
        await bench_postgres(args.calls, args.concurrency)
    if "rabbit" in only:
        await bench_rabbit(args.calls, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
