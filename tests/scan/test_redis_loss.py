"""Redis flushed in the middle of scan runs (real mode, a private redis-server — never the shared one).

What lives in Redis for a scan is the per-job event log behind the SSE streams and the rate-limit
counters (docs/redis.md). Jobs, checkpoints, results and idempotency keys are in PostgreSQL and the
work queue is RabbitMQ, so a flush must lose no job: every job still ends ``done`` with its result
readable, the streams open during the flush still end with ``done`` (seqs keep increasing, contract
§10.2), and a client resuming with a ``Last-Event-ID`` from before the flush gets the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.common.config import CommonSettings
from tests.scan.conftest import Stack, StackFactory, delete_job_queue, start_worker
from tests.support.instances import private_redis

pytestmark = [pytest.mark.real_only, pytest.mark.slow]


@pytest.fixture(scope="module")
def private_redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture(scope="module")
def scan_common(migrated: CommonSettings, run_id: str, private_redis_url: str) -> Iterator[CommonSettings]:
    """This module's scan stack: its own Redis (to flush) and its own work queue."""
    common = migrated.model_copy(
        update={"redis_url": private_redis_url, "events_namespace": f"eco2test-{run_id}-redisloss"}
    )
    yield common
    delete_job_queue(common)


@pytest.fixture
async def flush(private_redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(private_redis_url)
    yield client.flushall
    await client.aclose()


async def wait_for_event(stack: Stack, job_id: str, event: str, status: str, timeout: float = 20) -> None:
    async def seen() -> bool:
        frames = await stack.service.events.read(job_id)
        return any(f.event == event and f'"status":"{status}"' in f.data for f in frames)

    deadline = asyncio.get_running_loop().time() + timeout
    while not await seen():
        assert asyncio.get_running_loop().time() < deadline, f"{job_id}: no {event}/{status}"
        await asyncio.sleep(0.02)


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [int(f["id"]) for f in frames if "id" in f]


async def test_a_flush_mid_run_loses_no_job_and_streams_still_end_with_done(
    make_stack: StackFactory, flush: Any
) -> None:
    stack = await make_stack(model=True)
    stack.llm.latency = {"classification": 0.6, "answer": 0.6}  # long enough to flush mid-run
    jobs = [(await stack.submit("라벨 뗀 생수병")).json()["job_id"] for _ in range(3)]
    open_streams = [asyncio.create_task(stack.stream(job_id)) for job_id in jobs]
    for job_id in jobs:
        await wait_for_event(stack, job_id, "vision", "started")
    before = {job_id: max(f.seq for f in await stack.service.events.read(job_id)) for job_id in jobs}

    await flush()  # every job's event log and seq counter, the rate-limit counters: gone

    for job_id in jobs:
        result = await stack.result(job_id, timeout=30)
        assert result["status"] == "completed"
        assert result["pipeline_result"]["classification_result"]["classification"]["middle_category"] == "무색페트병"
    for job_id, task in zip(jobs, open_streams, strict=True):
        response, frames = await asyncio.wait_for(task, timeout=30)
        assert response.status_code == 200
        assert frames[-1]["event"] == "done", frames
        assert frames[-1]["data"]["status"] == "completed"
        ids = seqs(frames)
        assert ids == sorted(set(ids)), f"seqs not strictly increasing across the flush: {ids}"
        # A client that saw everything up to the flush and resumes gets the rest, ending with done.
        resumed, rest = await stack.stream(job_id, last_event_id=str(before[job_id]))
        assert resumed.status_code == 200
        assert rest[-1]["event"] == "done"
        assert all(seq > before[job_id] for seq in seqs(rest))

    # A scan submitted after the flush runs as usual (its log starts at 1 again: a new job).
    after = (await stack.submit("라벨 뗀 생수병")).json()["job_id"]
    assert (await stack.result(after, timeout=30))["status"] == "completed"
    _, frames = await stack.stream(after)
    assert seqs(frames)[0] == 1
    assert frames[-1]["event"] == "done"


async def test_a_job_queued_before_the_flush_still_runs(make_stack: StackFactory, flush: Any) -> None:
    stack = await make_stack(worker=False)
    job_id = (await stack.submit("헹군 소주병")).json()["job_id"]  # queued: log holds only `queued`
    await flush()
    async with contextlib.AsyncExitStack() as workers:
        await start_worker(workers, stack.common, stack.settings, stack.service.http, stack.image_settings)
        result = await stack.result(job_id, timeout=30)
    assert result["status"] == "completed"
    _, frames = await stack.stream(job_id)
    assert frames[-1]["event"] == "done"
    assert uuid.UUID(frames[-1]["data"]["job_id"]) == uuid.UUID(job_id)
