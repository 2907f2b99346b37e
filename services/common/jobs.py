"""Asynchronous jobs (scan, chat): the per-job event log behind the SSE streams, and the work queue.

Event log. Each job has an ordered log of events numbered 1, 2, 3… (``seq``). Real adapter: a Redis
Stream per job whose entry ids *are* the seqs (``<seq>-1``), written by one Lua script that also
bumps the counter, refreshes the TTL and publishes the frame on one pub/sub channel, so an append is
one round trip and a reader can resume with ``XRANGE (seq``. Embedded adapter: lists in this process.

Live delivery is fanned out per process, not per connection: one pub/sub connection (or the
in-process append itself) feeds a ``Hub`` that wakes the local subscribers of that job. A stream
costs a small object and a wake-up event, not a Redis connection — that is what lets one process hold
thousands of open SSE streams.

Work queue. Real adapter: a RabbitMQ quorum queue (message = job id, acked only after the handler
returns, so a crashed worker's jobs are redelivered). Embedded adapter: an asyncio queue in this
process with the same retry semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real adapters' clients are imported when used: embedded runs never load them
    import aio_pika
    import redis.asyncio as aioredis
    from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from services.common.config import CommonSettings
from services.common.errors import dependency_unavailable
from services.common.events import consume_until_stopped
from services.common.kv import redis_client
from services.common.logging import get_logger

log = get_logger("eco2.jobs")

# Frames a subscriber may have waiting before it counts as too slow (contract §10.3 rule 10).
MAX_PENDING_FRAMES = 256


@dataclass(slots=True, frozen=True)
class Frame:
    seq: int
    event: str
    data: str  # the JSON object sent as ``data:``; it already holds ``"seq"``


def _with_seq(seq: int, data: dict[str, Any]) -> str:
    return json.dumps({"seq": seq, **data}, ensure_ascii=False, separators=(",", ":"))


class Subscription:
    """One reader's inbox of live frames for one job."""

    __slots__ = ("frames", "job_id", "overflow", "resync", "wake")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.frames: deque[Frame] = deque()
        self.wake = asyncio.Event()
        self.resync = False  # frames may have been lost (reconnect): re-read the log
        self.overflow = False

    def push(self, frame: Frame) -> None:
        if len(self.frames) >= MAX_PENDING_FRAMES:
            self.overflow = True
        else:
            self.frames.append(frame)
        self.wake.set()


class Hub:
    """Local subscribers by job id."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def add(self, sub: Subscription) -> None:
        self._subs[sub.job_id].add(sub)

    def remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.job_id]

    def dispatch(self, job_id: str, frame: Frame) -> None:
        for sub in self._subs.get(job_id, ()):
            sub.push(frame)

    def resync_all(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.resync = True
                sub.wake.set()

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._subs.values())


class JobEventLog(ABC):
    """Ordered per-job events with live subscription."""

    def __init__(self, retention_seconds: float) -> None:
        self.retention_seconds = retention_seconds
        self.hub = Hub()

    @abstractmethod
    async def append(self, job_id: str, event: str, data: dict[str, Any]) -> int:
        """Store the next event of the job; returns its seq. ``data`` must not hold ``seq``."""

    @abstractmethod
    async def read(self, job_id: str, after: int = 0) -> list[Frame]:
        """Events with ``seq > after``, in order."""

    @abstractmethod
    async def delete(self, job_id: str) -> None: ...

    async def ensure_listening(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """Register *before* reading the backlog so nothing produced in between is missed."""
        await self.ensure_listening()
        sub = Subscription(job_id)
        self.hub.add(sub)
        try:
            yield sub
        finally:
            self.hub.remove(sub)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryJobEventLog(JobEventLog):
    def __init__(self, retention_seconds: float) -> None:
        super().__init__(retention_seconds)
        self._logs: dict[str, list[Frame]] = {}
        self._touched: dict[str, float] = {}
        self._appends = 0

    async def append(self, job_id: str, event: str, data: dict[str, Any]) -> int:
        frames = self._logs.setdefault(job_id, [])
        seq = len(frames) + 1
        frame = Frame(seq, event, _with_seq(seq, data))
        frames.append(frame)
        self._touched[job_id] = time.monotonic()
        self.hub.dispatch(job_id, frame)
        self._appends += 1
        if self._appends % 1000 == 0:
            self._prune()
        return seq

    def _prune(self) -> None:
        cutoff = time.monotonic() - self.retention_seconds
        for job_id in [j for j, t in self._touched.items() if t < cutoff]:
            self._logs.pop(job_id, None)
            self._touched.pop(job_id, None)

    async def read(self, job_id: str, after: int = 0) -> list[Frame]:
        return list(self._logs.get(job_id, ())[max(0, after) :])

    async def delete(self, job_id: str) -> None:
        self._logs.pop(job_id, None)
        self._touched.pop(job_id, None)


# One script = one round trip: counter, stream entry with id <seq>-1, TTLs, live notification.
_APPEND = """
local seq = redis.call('INCR', KEYS[2])
local data = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[1], seq .. '-1', 'e', ARGV[1], 'd', data)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[4] .. '|' .. seq .. '|' .. ARGV[1] .. '|' .. data)
return seq
"""


class RedisJobEventLog(JobEventLog):
    def __init__(self, url: str, prefix: str, namespace: str, retention_seconds: float) -> None:
        super().__init__(retention_seconds)
        self.client: aioredis.Redis = redis_client(url, health_check_interval=30, socket_connect_timeout=3)
        self.prefix = f"{prefix}jobs:{namespace}:"
        self.channel = f"{self.prefix}live"
        self._append = self.client.register_script(_APPEND)
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def _keys(self, job_id: str) -> list[str]:
        return [f"{self.prefix}{job_id}", f"{self.prefix}{job_id}:seq", self.channel]

    async def append(self, job_id: str, event: str, data: dict[str, Any]) -> int:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        ttl_ms = int(self.retention_seconds * 1000)
        return int(await self._append(keys=self._keys(job_id), args=[event, body, ttl_ms, job_id]))

    async def read(self, job_id: str, after: int = 0) -> list[Frame]:
        entries: Any = await self.client.xrange(self._keys(job_id)[0], min=f"{max(0, after) + 1}-0", max="+")
        return [Frame(int(str(entry_id).split("-")[0]), str(f["e"]), str(f["d"])) for entry_id, f in entries or ()]

    async def delete(self, job_id: str) -> None:
        await self.client.delete(*self._keys(job_id)[:2])

    async def ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._listening.clear()
            self._listener = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._listening.wait(), timeout=5)

    async def _listen(self) -> None:
        failures = 0
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if failures:
                    self.hub.resync_all()  # anything published while we were away is in the log
                failures = 0
                self._listening.set()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    job_id, seq, event, data = str(message["data"]).split("|", 3)
                    self.hub.dispatch(job_id, Frame(int(seq), event, data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("job_events_listener_failed", error=repr(exc), failures=failures)
                self.hub.resync_all()
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self.client.aclose()


_memory_logs: dict[str, MemoryJobEventLog] = {}


def create_job_log(common: CommonSettings, namespace: str, retention_seconds: float) -> JobEventLog:
    """Redis Streams when configured; otherwise one in-process log per namespace, shared in the process."""
    if common.redis_url:
        return RedisJobEventLog(common.redis_url, common.redis_key_prefix, namespace, retention_seconds)
    if namespace not in _memory_logs:
        _memory_logs[namespace] = MemoryJobEventLog(retention_seconds)
    return _memory_logs[namespace]


# ------------------------------------------------------------------------------------- work queue

JobHandler = Callable[[str, int], Awaitable[None]]  # (job id, delivery number starting at 1)


class JobQueue(ABC):
    @abstractmethod
    async def enqueue(self, job_id: str) -> None: ...

    @abstractmethod
    async def consume(self, handler: JobHandler, stop: asyncio.Event, concurrency: int) -> None:
        """Run ``handler`` for each job until ``stop``; a handler that raises gets the job again later."""

    async def close(self) -> None:
        return None


class MemoryJobQueue(JobQueue):
    def __init__(self, max_deliveries: int) -> None:
        self.max_deliveries = max_deliveries
        self._queue: asyncio.Queue[tuple[str, int]] | None = None

    @property
    def queue(self) -> asyncio.Queue[tuple[str, int]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    async def enqueue(self, job_id: str) -> None:
        self.queue.put_nowait((job_id, 1))

    async def consume(self, handler: JobHandler, stop: asyncio.Event, concurrency: int) -> None:
        async def worker() -> None:
            while not stop.is_set():
                getter = asyncio.ensure_future(self.queue.get())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if getter not in done:
                    getter.cancel()
                    return
                job_id, delivery = getter.result()
                try:
                    await run_through_outages(handler, job_id, delivery)
                except Exception:
                    log.warning("job_handler_failed", job_id=job_id, delivery=delivery, exc_info=True)
                    if delivery < self.max_deliveries:
                        await asyncio.sleep(min(0.05 * 2**delivery, 2.0))
                        self.queue.put_nowait((job_id, delivery + 1))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


class RabbitJobQueue(JobQueue):
    """A durable quorum queue; the broker redelivers unacked jobs of a crashed worker."""

    def __init__(self, url: str, name: str, max_deliveries: int) -> None:
        self.url = url
        self.name = name
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

        message = aio_pika.Message(job_id.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=job_id)
        await channel.default_exchange.publish(message, routing_key=self.name, timeout=10)

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
                await run_through_outages(handler, job_id, delivery)
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
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = None


_memory_queues: dict[str, MemoryJobQueue] = {}
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


def create_job_queue(common: CommonSettings, name: str, max_deliveries: int = 5) -> JobQueue:
    """RabbitMQ when configured (queue ``<events_namespace>.<name>.jobs``); else one in-process queue per name."""
    if common.rabbitmq_url:
        return RabbitJobQueue(common.rabbitmq_url, f"{common.events_namespace}.{name}.jobs", max_deliveries)
    if name not in _memory_queues:
        _memory_queues[name] = MemoryJobQueue(max_deliveries)
    return _memory_queues[name]
