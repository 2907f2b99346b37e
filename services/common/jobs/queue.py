"""The work queue of asynchronous jobs (scan, chat): job ids handed to workers, retried on failure.

Real adapter: a RabbitMQ quorum queue (message = job id, acked only after the handler returns, so a
crashed worker's jobs are redelivered; past ``max_deliveries`` a job is dead-lettered). Embedded
adapter: an asyncio queue in this process with the same retry semantics.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a broker URL is configured: embedded runs never load it
    import aio_pika
    from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from services.common.config import CommonSettings
from services.common.errors import dependency_unavailable
from services.common.events import consume_until_stopped
from services.common.logging import get_logger
from services.common.tracing import SpanKind, extract, inject, span

log = get_logger("eco2.jobs")

JobHandler = Callable[[str, int], Awaitable[None]]  # (job id, delivery number starting at 1)


# How long a job waits, in place, for a store to come back before its delivery counts as failed.
STORE_OUTAGE_PATIENCE_SECONDS = 60.0


async def run_through_outages(handler: JobHandler, job_id: str, delivery: int) -> None:
    """Run ``handler``; while it fails only because PostgreSQL/Redis is unreachable, retry in place.

    Deliveries are for jobs that fail: a database restart of a few seconds would otherwise use up
    every delivery of every job in flight (a quorum queue counts each one) and park them in the
    dead-letter queue, to end as timeouts. The message stays unacked meanwhile, so a worker that
    dies while waiting still hands the job to another one."""
    waited, pause = 0.0, 0.2
    while True:
        try:
            await handler(job_id, delivery)
            return
        except Exception as exc:
            if not dependency_unavailable(exc) or waited >= STORE_OUTAGE_PATIENCE_SECONDS:
                raise
            log.warning("job_store_unavailable", job_id=job_id, error=repr(exc), waited=round(waited, 1))
        await asyncio.sleep(pause)
        waited += pause
        pause = min(pause * 2, 5.0)


async def run_traced(handler: JobHandler, service: str, job_id: str, delivery: int, headers: Any) -> None:
    """One delivery inside a span continuing the trace of the request that enqueued the job."""
    attributes = {"eco2.job_id": job_id, "eco2.delivery": delivery, "messaging.destination.name": service}
    with span(f"{service} job", kind=SpanKind.CONSUMER, parent=extract(headers), attributes=attributes):
        await run_through_outages(handler, job_id, delivery)


class JobQueue(ABC):
    service = "jobs"  # the job service (scan, chat): metrics and spans are labelled with it
    # At most this many ``enqueue_unconfirmed`` calls wait for the broker in the background; past
    # that, callers wait themselves (back-pressure while the broker is slow or away, not a pile of tasks).
    MAX_UNCONFIRMED = 256

    def __init__(self) -> None:
        self._unconfirmed: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def enqueue(self, job_id: str) -> None:
        """Hand ``job_id`` to the workers; returns once the broker has it (publisher confirm)."""

    async def enqueue_unconfirmed(self, job_id: str) -> None:
        """Like ``enqueue``, without waiting for the broker's confirm: for a job whose row is already
        stored and that the sweeper re-enqueues when it stays queued (scan's submit). A failure is
        logged, not raised; ``close`` waits for the enqueues still in flight."""
        if len(self._unconfirmed) >= self.MAX_UNCONFIRMED:
            await self.enqueue_or_log(job_id)
            return
        task = asyncio.create_task(self.enqueue_or_log(job_id))  # copies the context: the trace goes on
        self._unconfirmed.add(task)
        task.add_done_callback(self._unconfirmed.discard)

    async def enqueue_or_log(self, job_id: str) -> None:
        """Like ``enqueue``, with a failure logged rather than raised: for a job whose row is already
        stored, which the service's sweeper hands to the workers again when it stays waiting."""
        try:
            await self.enqueue(job_id)
        except Exception as exc:  # the job stays queued; the sweeper re-enqueues it
            log.warning("job_enqueue_failed", service=self.service, job_id=job_id, error=repr(exc))

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout``) for the unconfirmed enqueues still in flight."""
        if self._unconfirmed:
            await asyncio.wait(set(self._unconfirmed), timeout=timeout)

    async def depth(self) -> int | None:
        """Jobs waiting to be taken (``None`` when it cannot be read now)."""
        return None

    @abstractmethod
    async def consume(self, handler: JobHandler, stop: asyncio.Event, concurrency: int) -> None:
        """Run ``handler`` for each job until ``stop``; a handler that raises gets the job again later."""

    async def close(self) -> None:
        await self.drain()


class MemoryJobQueue(JobQueue):
    def __init__(self, max_deliveries: int, service: str = "jobs") -> None:
        super().__init__()
        self.max_deliveries = max_deliveries
        self.service = service
        self._queue: asyncio.Queue[tuple[str, int, dict[str, str]]] | None = None

    @property
    def queue(self) -> asyncio.Queue[tuple[str, int, dict[str, str]]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    async def enqueue(self, job_id: str) -> None:
        self.queue.put_nowait((job_id, 1, dict(inject())))

    async def enqueue_unconfirmed(self, job_id: str) -> None:
        await self.enqueue_or_log(job_id)  # nothing to wait for: in the queue at once

    def _release(self, getter: asyncio.Future[tuple[str, int, dict[str, str]]]) -> None:
        # A get left pending would take the next job and drop it (nobody reads its result); one that
        # already holds a job goes back to the queue for another consumer.
        if not getter.done():
            getter.cancel()
        elif not getter.cancelled():
            self.queue.put_nowait(getter.result())

    async def depth(self) -> int | None:
        return self.queue.qsize()

    async def consume(self, handler: JobHandler, stop: asyncio.Event, concurrency: int) -> None:
        async def worker() -> None:
            while not stop.is_set():
                getter = asyncio.ensure_future(self.queue.get())
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:  # the consumer was cancelled (a killed worker)
                    self._release(getter)
                    raise
                finally:
                    stopper.cancel()
                if getter not in done:
                    self._release(getter)
                    return
                job_id, delivery, headers = getter.result()
                try:
                    await run_traced(handler, self.service, job_id, delivery, headers)
                except Exception:
                    log.warning("job_handler_failed", job_id=job_id, delivery=delivery, exc_info=True)
                    if delivery < self.max_deliveries:
                        await asyncio.sleep(min(0.05 * 2**delivery, 2.0))
                        self.queue.put_nowait((job_id, delivery + 1, headers))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


class RabbitJobQueue(JobQueue):
    """A durable quorum queue; the broker redelivers unacked jobs of a crashed worker."""

    def __init__(self, url: str, name: str, max_deliveries: int, service: str = "jobs") -> None:
        super().__init__()
        self.url = url
        self.name = name
        self.service = service
        self.max_deliveries = max_deliveries
        self._connection: AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def _declare(self, channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
        await channel.declare_queue(f"{self.name}.dlq", durable=True)
        return await channel.declare_queue(
            self.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.max_deliveries - 1,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": f"{self.name}.dlq",
            },
        )

    async def _connect(self) -> aio_pika.abc.AbstractChannel:
        async with self._lock:
            if self._connection is None:
                import aio_pika

                self._connection = await aio_pika.connect_robust(self.url, timeout=10)
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(publisher_confirms=True)
                await self._declare(self._channel)
            return self._channel

    async def enqueue(self, job_id: str) -> None:
        channel = await self._connect()
        import aio_pika

        message = aio_pika.Message(
            job_id.encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=job_id,
            headers=dict(inject()) or None,  # the submitting request's trace continues in the worker
        )
        await channel.default_exchange.publish(message, routing_key=self.name, timeout=10)

    async def depth(self) -> int | None:
        try:
            channel = await self._connect()
            declared = await channel.declare_queue(self.name, passive=True)
        except Exception:  # the broker is away: the gauge keeps its last value
            return None
        return declared.declaration_result.message_count

    async def consume(self, handler: JobHandler, stop: asyncio.Event, concurrency: int) -> None:
        await self._connect()
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=concurrency)
        queue = await self._declare(channel)

        async def on_message(message: AbstractIncomingMessage) -> None:
            delivery = int(str((message.headers or {}).get("x-delivery-count") or 0)) + 1
            job_id = message.body.decode()
            try:
                await run_traced(handler, self.service, job_id, delivery, message.headers)
            except Exception:
                log.warning("job_handler_failed", job_id=job_id, delivery=delivery, exc_info=True)
                await asyncio.sleep(min(0.05 * 2**delivery, 2.0))
                await message.nack(requeue=True)
                return
            await message.ack()  # only now: the job's state is stored

        await consume_until_stopped(channel, queue, on_message, stop)

    async def delete(self) -> None:
        """Remove the queue and its dead-letter queue (tests on a shared broker)."""
        channel = await self._connect()
        for name in (self.name, f"{self.name}.dlq"):
            await channel.queue_delete(name)

    async def close(self) -> None:
        await self.drain()  # a graceful stop hands over what it accepted
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = None


_memory_queues: dict[str, MemoryJobQueue] = {}


def create_job_queue(common: CommonSettings, name: str, max_deliveries: int = 5) -> JobQueue:
    """RabbitMQ when configured (queue ``<events_namespace>.<name>.jobs``); else one in-process queue per name."""
    if common.rabbitmq_url:
        return RabbitJobQueue(common.rabbitmq_url, f"{common.events_namespace}.{name}.jobs", max_deliveries, name)
    if name not in _memory_queues:
        _memory_queues[name] = MemoryJobQueue(max_deliveries, name)
    return _memory_queues[name]
