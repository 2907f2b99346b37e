"""The in-process job queue (``eco2 dev``, embedded tests): a killed consumer loses no job."""

from __future__ import annotations

import asyncio

from services.common.jobs.queue import MemoryJobQueue


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
