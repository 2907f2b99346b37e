"""The job queue: the in-process one (``eco2 dev``, embedded tests) loses no job to a killed consumer;
an unconfirmed enqueue (scan's submit) answers before the broker, is waited for on close, logs a failure."""

from __future__ import annotations

import asyncio

import pytest

from services.common.jobs import queue as queue_module
from services.common.jobs.queue import JobHandler, JobQueue, MemoryJobQueue


async def test_a_cancelled_consumer_does_not_take_the_next_job() -> None:
    queue = MemoryJobQueue(max_deliveries=3, service="test")
    handled: list[str] = []

    async def handle(job_id: str, delivery: int) -> None:
        handled.append(job_id)

    killed = asyncio.create_task(queue.consume(handle, asyncio.Event(), concurrency=2))
    await asyncio.sleep(0.05)  # its consumers wait in queue.get()
    killed.cancel()  # a worker crash, as the chat and scan tests simulate it
    await asyncio.gather(killed, return_exceptions=True)

    await queue.enqueue("job-1")
    stop = asyncio.Event()
    survivor = asyncio.create_task(queue.consume(handle, stop, concurrency=1))
    for _ in range(200):
        if handled:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(survivor, 5)
    assert handled == ["job-1"]


class GatedQueue(JobQueue):
    """A broker whose confirm arrives when the test opens the gate (or that refuses every publish)."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.refuse = refuse
        self.confirmed: list[str] = []

    async def enqueue(self, job_id: str) -> None:
        if self.refuse:
            raise ConnectionError("broker away")
        await self.gate.wait()
        self.confirmed.append(job_id)

    async def consume(self, handler: JobHandler, stop: asyncio.Event, concurrency: int) -> None:
        raise NotImplementedError


async def test_an_unconfirmed_enqueue_returns_before_the_confirm_and_close_waits_for_it() -> None:
    queue = GatedQueue()
    await asyncio.wait_for(queue.enqueue_unconfirmed("job-1"), 1)  # returns with the gate still closed
    assert queue.confirmed == []
    closing = asyncio.create_task(queue.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # a graceful stop hands over what it accepted
    queue.gate.set()
    await asyncio.wait_for(closing, 1)
    assert queue.confirmed == ["job-1"]


async def test_unconfirmed_enqueues_past_the_cap_wait_for_their_own_confirm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GatedQueue, "MAX_UNCONFIRMED", 2)
    queue = GatedQueue()
    await queue.enqueue_unconfirmed("job-1")
    await queue.enqueue_unconfirmed("job-2")
    third = asyncio.create_task(queue.enqueue_unconfirmed("job-3"))
    await asyncio.sleep(0.05)
    assert not third.done()  # back-pressure: the caller waits once two are in flight
    queue.gate.set()
    await asyncio.wait_for(third, 1)
    await queue.close()
    assert sorted(queue.confirmed) == ["job-1", "job-2", "job-3"]


async def test_a_refused_unconfirmed_enqueue_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(queue_module.log, "warning", lambda event, **fields: warnings.append((event, fields)))
    queue = GatedQueue(refuse=True)
    await queue.enqueue_unconfirmed("job-1")
    await queue.close()
    assert [(event, fields["job_id"]) for event, fields in warnings] == [("job_enqueue_failed", "job-1")]
    memory = MemoryJobQueue(max_deliveries=3)
    await memory.enqueue_unconfirmed("job-2")  # the embedded queue has it at once
    assert memory.queue.qsize() == 1
