"""Domain events: envelope, bus (RabbitMQ or in-process), outbox relay, consumers, dead letters.

Delivery is at-least-once end to end:

1. a service writes the event to its own ``outbox`` table in the transaction that made the change;
2. the relay publishes unpublished rows (RabbitMQ with publisher confirms) and only then marks them;
3. each consumer has its own durable queue; a handler runs in a DB transaction that first records the
   event id in the consumer's ``inbox`` table (a duplicate is skipped), the message is acked after
   that commit, and a failing event is retried with backoff until ``events_max_deliveries`` and then
   parked in the consumer's dead-letter queue, from where ``eco2 events replay`` puts it back. A payload
   that does not match its event model (``services.common.domain_events``) is parked at once: no
   retry can fix it, and no handler ever sees it.

Embedded mode keeps the same outbox/relay/inbox path; only the transport is an in-process dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import all_, any_, bindparam, delete, exists, literal, select, text, union_all, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.common.clock import iso_ms, utcnow
from services.common.config import CommonSettings
from services.common.db import Database, UtcDateTime
from services.common.domain_events import DomainEvent
from services.common.logging import get_logger
from services.common.metrics import (
    EVENT_LAG,
    EVENTS_CONSUMED,
    OUTBOX_FAILURES,
    OUTBOX_LAG,
    OUTBOX_PUBLISHED,
)
from services.common.outbox import OUTBOX_CHANNEL, on_outbox_commit
from services.common.tracing import OUTBOX_TRACE_KEY, SpanKind, extract, inject, span

if TYPE_CHECKING:  # imported when a broker URL is configured: embedded runs never load it
    import aio_pika
    from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

log = get_logger("eco2.events")


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    payload: dict[str, Any]
    occurred_at: str
    producer: str

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Event:
        data = json.loads(raw)
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            payload=dict(data["payload"]),
            occurred_at=str(data["occurred_at"]),
            producer=str(data.get("producer", "")),
        )


Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]


class PoisonEvent(Exception):
    """An event no redelivery can apply (unknown type, payload not matching its model): parked at once."""


@dataclass(frozen=True)
class Subscription:
    """A consumer (one durable queue) and the event types it handles."""

    consumer: str
    event_types: tuple[str, ...]
    handler: Handler
    # Applies several events in one transaction (all or nothing); the bus falls back to ``handler``
    # one event at a time when it raises.
    batch_handler: BatchHandler | None = None


@dataclass
class DeadLetter:
    event: Event
    reason: str


class EventBus(ABC):
    concurrent_confirms = False  # True: publishes may be in flight together (their confirms awaited together)

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @abstractmethod
    async def declare(self, consumers: Mapping[str, Sequence[str]]) -> None:
        """Create every consumer's queue and bindings, so events published before a consumer starts wait for it."""

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Return only once the bus has taken responsibility for the event (confirmed)."""

    @abstractmethod
    async def consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        """Deliver events to ``subscription.handler`` until ``stop`` is set."""

    @abstractmethod
    async def dead_letters(self, consumer: str) -> list[DeadLetter]: ...

    @abstractmethod
    async def replay(self, consumer: str) -> int:
        """Move every dead letter of ``consumer`` back to its queue; returns how many."""

    async def ping(self) -> None:
        return None


# How long a consumer's first message of a burst waits for the others (aio-pika hands each its own task).
BURST_WAIT = 0.005


def _backoff(attempt: int) -> float:
    return min(0.05 * 2**attempt, 5.0)


class InProcessBus(EventBus):
    """Embedded transport: publish hands the event to each subscribed handler in this process.

    ``publish`` returns after every handler has taken the event (or parked it as a dead letter), so
    the relay marks an outbox row only once it was delivered — a crash before that re-delivers it.
    """

    def __init__(self, max_deliveries: int = 5) -> None:
        self.max_deliveries = max_deliveries
        self._routes: dict[str, set[str]] = defaultdict(set)  # event type -> consumers
        self._handlers: dict[str, Handler] = {}
        self._pending: dict[str, list[Event]] = defaultdict(list)  # declared, no handler attached yet
        self._dead: dict[str, list[DeadLetter]] = defaultdict(list)

    async def declare(self, consumers: Mapping[str, Sequence[str]]) -> None:
        for consumer, types in consumers.items():
            for event_type in types:
                self._routes[event_type].add(consumer)

    async def publish(self, event: Event) -> None:
        for consumer in sorted(self._routes.get(event.type, ())):
            handler = self._handlers.get(consumer)
            if handler is None:
                self._pending[consumer].append(event)
            else:
                await self._deliver(consumer, handler, event)

    async def _deliver(self, consumer: str, handler: Handler, event: Event) -> None:
        for attempt in range(self.max_deliveries):
            try:
                with consume_span(consumer, event, None, attempt + 1):
                    await handler(event)
                return
            except PoisonEvent as exc:
                self._park(consumer, event, exc)
                return
            except Exception as exc:
                EVENTS_CONSUMED(consumer, "failed").inc()
                log.warning("event_handler_failed", consumer=consumer, event_type=event.type, attempt=attempt + 1)
                if attempt + 1 == self.max_deliveries:
                    self._park(consumer, event, exc)
                    return
                await asyncio.sleep(_backoff(attempt))

    def _park(self, consumer: str, event: Event, reason: Exception) -> None:
        self._dead[consumer].append(DeadLetter(event, repr(reason)))
        EVENTS_CONSUMED(consumer, "dead_lettered").inc()
        log.error("event_dead_lettered", consumer=consumer, event_id=event.id, event_type=event.type)

    async def consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        await self.declare({subscription.consumer: subscription.event_types})
        self._handlers[subscription.consumer] = subscription.handler
        try:
            for event in self._pending.pop(subscription.consumer, []):
                await self._deliver(subscription.consumer, subscription.handler, event)
            await stop.wait()
        finally:
            self._handlers.pop(subscription.consumer, None)

    async def dead_letters(self, consumer: str) -> list[DeadLetter]:
        return list(self._dead.get(consumer, []))

    async def replay(self, consumer: str) -> int:
        letters = self._dead.pop(consumer, [])
        handler = self._handlers.get(consumer)
        for letter in letters:
            if handler is None:
                self._pending[consumer].append(letter.event)
            else:
                await self._deliver(consumer, handler, letter.event)
        return len(letters)


class RabbitBus(EventBus):
    """RabbitMQ: one durable topic exchange, one quorum queue per consumer, a dead-letter queue each.

    Quorum queues count deliveries themselves (``x-delivery-count``), including redeliveries after a
    consumer crashed without acking, and dead-letter a message past ``x-delivery-limit``: a poison
    event cannot loop forever, and a crash mid-event is simply a redelivery.
    """

    concurrent_confirms = True

    def __init__(self, url: str, namespace: str = "eco2", max_deliveries: int = 5, prefetch: int = 32) -> None:
        self.url = url
        self.namespace = namespace
        self.max_deliveries = max_deliveries
        self.prefetch = prefetch
        self.exchange_name = f"{namespace}.events"
        self.dlx_name = f"{namespace}.dlx"
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._lock = asyncio.Lock()

    def queue_name(self, consumer: str) -> str:
        return f"{self.namespace}.{consumer}"

    def dlq_name(self, consumer: str) -> str:
        return f"{self.namespace}.{consumer}.dlq"

    async def connect(self) -> None:
        import aio_pika

        async with self._lock:
            if self._connection is None:
                self._connection = await aio_pika.connect_robust(self.url, timeout=10)
            if self._publish_channel is not None and self._publish_channel.is_closed:
                # aio-pika restores a robust channel after an outage, but a restore that fails (seen
                # under load: its close callback raising while the broker was away) leaves it closed for
                # good, and every later publish of the relay failed until the process restarted. Closing
                # it ourselves releases it; a fresh one is opened below, as the job queue does.
                stale, self._publish_channel, self._exchange = self._publish_channel, None, None
                with contextlib.suppress(Exception):
                    await stale.close()
            if self._exchange is None:
                self._publish_channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await self._publish_channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                await self._publish_channel.declare_exchange(self.dlx_name, aio_pika.ExchangeType.DIRECT, durable=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._publish_channel = self._exchange = None

    async def _queue(self, channel: aio_pika.abc.AbstractChannel, consumer: str) -> aio_pika.abc.AbstractQueue:
        dlq = await channel.declare_queue(self.dlq_name(consumer), durable=True)
        await dlq.bind(self.dlx_name, routing_key=consumer)
        return await channel.declare_queue(
            self.queue_name(consumer),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.max_deliveries - 1,  # deliveries = 1 + redeliveries
                "x-dead-letter-exchange": self.dlx_name,
                "x-dead-letter-routing-key": consumer,
            },
        )

    async def declare(self, consumers: Mapping[str, Sequence[str]]) -> None:
        await self.connect()
        assert self._connection is not None
        async with self._connection.channel() as channel:
            for consumer, types in consumers.items():
                queue = await self._queue(channel, consumer)
                for event_type in types:
                    await queue.bind(self.exchange_name, routing_key=event_type)

    async def publish(self, event: Event) -> None:
        import aio_pika

        await self.connect()
        assert self._exchange is not None
        message = aio_pika.Message(
            event.to_json(),
            message_id=event.id,
            type=event.type,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(inject()) or None,  # the relay's publish span: consumers continue its trace
        )
        # With publisher confirms this returns once the broker has the message on disk (or raises).
        await self._exchange.publish(message, routing_key=event.type, timeout=10)

    async def consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        await self.declare({subscription.consumer: subscription.event_types})
        channel, queue = await self._open_consumer(subscription.consumer)

        async def deliver(message: AbstractIncomingMessage) -> None:
            name = subscription.consumer
            try:
                event = Event.from_json(message.body)
            except (ValueError, KeyError, TypeError):
                log.error("event_unreadable", consumer=name, message_id=message.message_id)
                EVENTS_CONSUMED(name, "dead_lettered").inc()
                await message.reject(requeue=False)  # straight to the dead-letter queue
                return
            count = int(str((message.headers or {}).get("x-delivery-count") or 0))
            try:
                with consume_span(name, event, message.headers, count + 1):
                    await subscription.handler(event)
            except PoisonEvent as exc:
                log.error("event_dead_lettered", consumer=name, event_id=event.id, reason=str(exc))
                EVENTS_CONSUMED(name, "dead_lettered").inc()
                await message.reject(requeue=False)
                return
            except Exception:
                # Past the delivery limit the broker dead-letters it: the last failure is counted as such.
                outcome = "dead_lettered" if count + 1 >= self.max_deliveries else "failed"
                EVENTS_CONSUMED(name, outcome).inc()
                log.warning(
                    "event_handler_failed",
                    consumer=subscription.consumer,
                    event_type=event.type,
                    event_id=event.id,
                    delivery=count + 1,
                    exc_info=True,
                )
                await asyncio.sleep(_backoff(count))
                await message.nack(requeue=True)
                return
            await message.ack()

        burst: list[AbstractIncomingMessage] = []

        async def on_message(message: AbstractIncomingMessage) -> None:
            if subscription.batch_handler is None:
                await deliver(message)
                return
            # The messages arriving together (one relay pass, a backlog) share a transaction: the
            # first waits a moment for the rest of the burst, then applies them all at once.
            burst.append(message)
            if len(burst) > 1:
                return
            try:
                await asyncio.sleep(BURST_WAIT)
            except asyncio.CancelledError:
                # aio-pika cancels a channel's callbacks when the channel closes (a broker outage).
                # Nothing of the burst was acked, so the broker redelivers all of it; kept here, the
                # burst would make every later message a follower of a leader that is gone, and the
                # consumer would stop applying anything once its prefetch is full of them.
                burst.clear()
                raise
            batch = burst[:]
            burst.clear()
            if len(batch) > 1 and await self._apply_batch(subscription.batch_handler, batch):
                return
            for one in batch:  # alone, or the batch failed: each on its own, with its own retry and dead letter
                await deliver(one)

        await consume_until_stopped(channel, queue, on_message, stop)

    async def _open_consumer(self, consumer: str) -> tuple[aio_pika.abc.AbstractChannel, aio_pika.abc.AbstractQueue]:
        """The consumer's own channel (its prefetch bounds the messages in hand) and its queue."""
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        return channel, await channel.get_queue(self.queue_name(consumer))

    async def _apply_batch(self, apply: BatchHandler, messages: Sequence[AbstractIncomingMessage]) -> bool:
        """Apply ``messages`` in one transaction and ack them after its commit; False if anything failed
        (nothing was applied, nothing acked)."""
        try:
            await apply([Event.from_json(message.body) for message in messages])
        except Exception:
            return False
        for message in messages:
            await message.ack()
        return True

    async def dead_letters(self, consumer: str) -> list[DeadLetter]:
        await self.connect()
        assert self._connection is not None
        letters: list[DeadLetter] = []
        async with self._connection.channel() as channel:
            dlq = await channel.declare_queue(self.dlq_name(consumer), durable=True)
            held: list[AbstractIncomingMessage] = []
            while (message := await dlq.get(no_ack=False, fail=False)) is not None:
                held.append(message)
                reason = str(((message.headers or {}).get("x-first-death-reason")) or "rejected")
                try:
                    letters.append(DeadLetter(Event.from_json(message.body), reason))
                except (ValueError, KeyError, TypeError):
                    letters.append(DeadLetter(Event(message.message_id or "?", "unreadable", {}, "", ""), reason))
            for message in held:  # only a look: put them all back
                await message.nack(requeue=True)
        return letters

    async def replay(self, consumer: str) -> int:
        import aio_pika

        await self.connect()
        assert self._connection is not None
        moved = 0
        async with self._connection.channel(publisher_confirms=True) as channel:
            dlq = await channel.declare_queue(self.dlq_name(consumer), durable=True)
            while (message := await dlq.get(no_ack=False, fail=False)) is not None:
                copy = aio_pika.Message(
                    message.body,
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await channel.default_exchange.publish(copy, routing_key=self.queue_name(consumer))
                await message.ack()
                moved += 1
        return moved

    async def ping(self) -> None:
        await self.connect()
        assert self._connection is not None
        if self._connection.is_closed:
            raise ConnectionError("broker connection is closed")


async def consume_until_stopped(
    channel: aio_pika.abc.AbstractChannel,
    queue: aio_pika.abc.AbstractQueue,
    on_message: Callable[[AbstractIncomingMessage], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Consume ``queue`` with manual acks until ``stop`` is set, then detach without raising."""
    tag = await queue.consume(on_message, no_ack=False)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
        with contextlib.suppress(Exception):
            await channel.close()


_shared_in_process_bus: InProcessBus | None = None


def create_bus(common: CommonSettings) -> EventBus:
    """RabbitMQ when configured; otherwise the one in-process dispatcher of this process."""
    global _shared_in_process_bus
    if common.rabbitmq_url:
        return RabbitBus(common.rabbitmq_url, common.events_namespace, common.events_max_deliveries)
    if _shared_in_process_bus is None:
        _shared_in_process_bus = InProcessBus(common.events_max_deliveries)
    return _shared_in_process_bus


# ---------------------------------------------------------------------------------------- consumers


class InboxMixin:
    """Event ids a consumer has applied; the primary key makes a second application impossible."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column()
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeletedUserMixin:
    """Ids of deleted accounts (no personal data), so an event arriving late cannot recreate their rows."""

    __tablename__ = "deleted_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


async def claim_event(session: AsyncSession, inbox: type[Any], consumer: str, event: Event) -> bool:
    """Record ``event`` as applied by ``consumer`` in the caller's transaction; False if it already was."""
    return bool(await claim_events(session, inbox, consumer, [event]))


async def claim_events(session: AsyncSession, inbox: type[Any], consumer: str, events: Sequence[Event]) -> set[str]:
    """Record ``events`` as applied by ``consumer`` in one statement; the ids not recorded before."""
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": e.id, "event_type": e.type, "processed_at": now} for e in events]
    statement = _claim_statement(inbox, session.get_bind().dialect.name)
    result = await session.execute(statement, rows[0] if len(rows) == 1 else rows)
    return set(result.scalars().all())


_claims: dict[tuple[type[Any], str], Any] = {}


def _claim_statement(inbox: type[Any], dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING event_id``, built once per inbox (a new statement
    object per message is compiled-cache lookups and construction that cost more than the insert)."""
    key = (inbox, dialect)
    if key not in _claims:
        insert, table = (pg_insert if dialect == "postgresql" else sqlite_insert), inbox.__table__
        _claims[key] = insert(table).on_conflict_do_nothing().returning(table.c.event_id)
    return _claims[key]


Context = TypeVar("Context")
E = TypeVar("E", bound=DomainEvent)
Apply = Callable[[Context, AsyncSession, E], Awaitable[None]]
AfterCommit = Callable[[Context, E], Awaitable[None]]
Params = Callable[[Context, E], dict[str, Any]]


@dataclass(frozen=True)
class OneStatement:
    """A handler's PostgreSQL form: its writes as data-modifying CTEs of the statement that claims the
    inbox, so an event is one autocommit round trip instead of ``BEGIN``, the claim, the handler's
    statements and ``COMMIT``. Each CTE must write only ``FROM claimed`` (the inbox insert's
    ``RETURNING``: no row when the event was applied before), so the claim still gates the writes."""

    sql: Any  # the prebuilt ``text`` statement; its one result row: 1 if claimed now, 0 if seen before
    params: Params[Any, Any]


class Consumer(Generic[Context]):
    """One consumer (one durable queue): a handler per event model, applied once per event id.

    A service declares its consumer once, at import, so the queue's bindings (``topology``) follow
    from its handlers; ``subscription`` binds it to a process's database and the ``Context`` its
    handlers need (stores, settings). A handler runs in the transaction that records the event in
    the inbox, with the payload already validated into its model.
    """

    def __init__(self, name: str, inbox: type[Any]) -> None:
        self.name = name
        self.inbox = inbox
        self.handlers: dict[type[DomainEvent], Apply[Context, Any]] = {}
        self.after_commit: dict[type[DomainEvent], AfterCommit[Context, Any]] = {}
        self.statements: dict[type[DomainEvent], OneStatement] = {}

    def on(self, model: type[E]) -> Callable[[Apply[Context, E]], Apply[Context, E]]:
        """Register the handler of ``model`` (one per model)."""

        def register(apply: Apply[Context, E]) -> Apply[Context, E]:
            if model in self.handlers:
                raise ValueError(f"{self.name} already handles {model.name}")
            self.handlers[model] = apply
            return apply

        return register

    def then(self, *models: type[DomainEvent]) -> Callable[[AfterCommit[Context, Any]], AfterCommit[Context, Any]]:
        """Register work to do after the handler's commit (also for a redelivered duplicate), e.g. a broadcast."""

        def register(hook: AfterCommit[Context, Any]) -> AfterCommit[Context, Any]:
            for model in models:
                self.after_commit[model] = hook
            return hook

        return register

    def in_one_statement(self, model: type[E], ctes: str) -> Callable[[Params[Context, E]], Params[Context, E]]:
        """Register the PostgreSQL form of ``model``'s handler (registered with ``on`` first, which
        SQLite keeps using): ``ctes`` — ``name AS (…)`` clauses writing ``FROM claimed``, with
        ``:name`` parameters — and the decorated function, which gives those parameters for an event.
        Both forms must write the same rows (tests run both)."""
        if model not in self.handlers:
            raise ValueError(f"{self.name}: register the handler of {model.name} with `on` first")
        table = self.inbox.__table__
        # Table names and ``ctes`` are the code's own constants, never input; values are bound.
        sql = text(
            f"WITH claimed AS (INSERT INTO {table.fullname} (consumer, event_id, event_type, processed_at)"  # noqa: S608
            " VALUES (:inbox_consumer, :inbox_event_id, :inbox_event_type, :inbox_processed_at)"
            f" ON CONFLICT DO NOTHING RETURNING event_id), {ctes} SELECT count(*) FROM claimed"
        ).bindparams(bindparam("inbox_processed_at", type_=table.c.processed_at.type))

        def register(params: Params[Context, E]) -> Params[Context, E]:
            self.statements[model] = OneStatement(sql, params)
            return params

        return register

    async def _apply_statements(self, db: Database, context: Context, envelopes: Sequence[Event],
                                events: Sequence[DomainEvent]) -> list[bool]:  # fmt: skip
        """Each event as its one statement (``in_one_statement``), autocommit: each is applied (or
        skipped as seen before) on its own; if one fails, those before it stay applied and their
        redelivery is a duplicate. Which events were claimed now."""
        now = utcnow()
        fresh: list[bool] = []
        async with db.autocommit() as conn:
            for envelope, event in zip(envelopes, events, strict=True):
                one = self.statements[type(event)]
                inbox = {"inbox_consumer": self.name, "inbox_event_id": envelope.id,
                         "inbox_event_type": envelope.type, "inbox_processed_at": now}  # fmt: skip
                fresh.append(bool((await conn.execute(one.sql, one.params(context, event) | inbox)).scalar()))
        return fresh

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(str(model.name) for model in self.handlers)

    def topology(self) -> dict[str, tuple[str, ...]]:
        """This consumer's queue and the event types bound to it."""
        return {self.name: self.event_types}

    def parse(self, envelope: Event) -> DomainEvent:
        model = next((m for m in self.handlers if m.name == envelope.type), None)
        if model is None:
            raise PoisonEvent(f"{self.name} has no handler for {envelope.type!r}")
        try:
            return model.model_validate(envelope.payload)
        except ValidationError as exc:
            raise PoisonEvent(f"{envelope.type} payload does not match its model: {exc}") from exc

    def subscription(self, db: Database, context: Context) -> Subscription:
        applied, duplicate, lag = (
            EVENTS_CONSUMED(self.name, "applied"),
            EVENTS_CONSUMED(self.name, "duplicate"),
            EVENT_LAG(self.name),
        )

        async def apply(envelopes: Sequence[Event]) -> None:
            events = [self.parse(envelope) for envelope in envelopes]  # PoisonEvent before any write
            first: list[bool] = []
            if not db.is_sqlite and all(type(event) in self.statements for event in events):
                first = await self._apply_statements(db, context, envelopes, events)
            else:
                async with db.session() as session:
                    claimed = await claim_events(session, self.inbox, self.name, envelopes)
                    for envelope, event in zip(envelopes, events, strict=True):
                        first.append(envelope.id in claimed)
                        claimed.discard(envelope.id)  # the same id twice in one batch is applied once
                        if first[-1]:
                            await self.handlers[type(event)](context, session, event)
                            if len(envelopes) > 1:
                                await session.flush()  # the next handler sees this one's writes, as if alone
            for envelope, event, fresh in zip(envelopes, events, first, strict=True):
                if fresh:
                    applied.inc()
                    lag.observe(_age(envelope.occurred_at))
                else:
                    duplicate.inc()
                hook = self.after_commit.get(type(event))
                if hook is not None:
                    await hook(context, event)

        async def handle(envelope: Event) -> None:
            await apply([envelope])

        return Subscription(self.name, self.event_types, handle, apply)


# ------------------------------------------------------------------------------------------- relay


@dataclass
class OutboxSource:
    producer: str
    db: Database
    model: type[Any]


@dataclass
class OutboxRelay:
    """Publishes outbox rows; wakes on the writers' commit notices, polls only as a safety net.

    A pass over one outbox takes no transaction: read up to ``batch_size`` unpublished rows (oldest
    first), publish them all with the confirms awaited together (one channel, so the broker receives
    them in order), mark the confirmed ones. On PostgreSQL the mark rides on the next read of that
    outbox (one statement) or on ``flush_marks`` when no notice came within ``mark_delay``: one round
    trip per pass. A relay that dies before the mark leaves the rows unpublished, so they are
    published again (duplicates the inboxes absorb). Rows carry no claim: ``run`` passes over a
    PostgreSQL database only while it holds that database's relay lock (``RELAY_LOCK``); another
    relay stands by. Embedded (SQLite) marks right after publishing.

    Notices: ``NOTIFY`` from the emitting transaction (PostgreSQL, any process; see ``outbox.py``)
    and ``on_outbox_commit`` (this process, embedded mode). A notice names its outbox, so the pass
    goes straight to it; the ``idle_interval`` poll (one ``EXISTS`` probe per database) only covers a
    lost notice or a listener reconnecting. After a pass the relay waits ``min_gap`` before the next,
    so that under load several commits share one pass.
    """

    sources: Sequence[OutboxSource]
    bus: EventBus
    batch_size: int = 200
    idle_interval: float = 2.0
    min_gap: float = 0.1
    # Published rows are marked by the next pass's read of their outbox (the same statement), or on
    # their own once no notice came for this long: one round trip per pass instead of two.
    mark_delay: float = 0.5
    retention: timedelta = timedelta(days=7)
    purge_every: float = 3600.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _hinted: set[str] | None = None  # outboxes (schemas) named by notices since the last pass; None: probe all
    _standby: set[str] = field(default_factory=set)  # databases (URLs) another relay holds the lock of
    _unmarked: dict[str, list[Any]] = field(default_factory=dict)  # producer -> ids published, not yet marked

    def wake(self, schema: str | None = None) -> None:
        """Ask for a pass now (a commit added outbox rows) instead of at the next poll."""
        if schema is None:
            self._hinted = None
        elif self._wake.is_set() and self._hinted is None:
            pass  # a full pass is already due
        else:
            if not self._wake.is_set():
                self._hinted = set()
            assert self._hinted is not None
            self._hinted.add(schema)
        self._wake.set()

    async def relay_once(self, hinted: set[str] | None = None) -> int:
        """One pass; ``hinted``: only the outboxes of these schemas (PostgreSQL), without the probe."""
        published = 0
        for group in self._groups():
            if group[0].db.url in self._standby:
                continue
            if group[0].db.is_sqlite:
                pending = group  # in-process file: the claim itself is the probe
            elif hinted is not None:  # and those whose marks are due: this pass's read carries them
                pending = [s for s in group if _schema(s) in hinted or s.producer in self._unmarked]
            else:
                pending = group if len(group) == 1 else await self._pending(group)
            for source in pending:
                published += await self._relay_source(source)
        return published

    def _groups(self) -> list[list[OutboxSource]]:
        """Sources by database: services sharing one PostgreSQL database (one schema each) are probed
        together; a SQLite source (one file per service, its schema translated away) stands alone."""
        groups: dict[str, list[OutboxSource]] = {}
        for index, source in enumerate(self.sources):
            groups.setdefault(f"sqlite-{index}" if source.db.is_sqlite else source.db.url, []).append(source)
        return list(groups.values())

    async def _pending(self, group: Sequence[OutboxSource]) -> list[OutboxSource]:
        """The sources of ``group`` with unpublished rows, found by one autocommit query.

        An idle relay used to open a transaction per outbox every pass (``BEGIN``, ``SELECT … FOR
        UPDATE``, ``COMMIT`` × 9 services, 5 passes a second) — most of its CPU and a fixed cost per
        scan (docs/benchmarks.md). One ``EXISTS`` per outbox in a single statement, outside any
        transaction, costs one round trip; only outboxes holding rows then get the locking pass."""
        probe = union_all(
            *(
                select(literal(index)).where(exists().where(source.model.published_at.is_(None)))
                for index, source in enumerate(group)
            )
        )
        async with group[0].db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            found = set((await conn.execute(probe)).scalars().all())
        for index, source in enumerate(group):
            if index not in found:
                OUTBOX_LAG(source.producer).set(0.0)
        return [group[index] for index in sorted(found)]

    async def _relay_source(self, source: OutboxSource) -> int:
        sqlite = source.db.is_sqlite
        take, mark = _relay_statements(source.model.__table__, self.batch_size, sqlite)
        done = self._unmarked.get(source.producer, [])
        now = utcnow()
        # No transaction: read, publish, then mark what the broker confirmed. A relay dying anywhere
        # before the mark leaves the rows unpublished, so the next pass (of any relay) sends them
        # again; the inboxes absorb that. On PostgreSQL the mark is deferred to the next pass's read
        # (``done``: one statement marks them and reads the next rows) or to ``flush_marks``: one
        # round trip per pass (was ``BEGIN``, claim, ``COMMIT``). Two relays never pass over one
        # database at once: ``run`` holds its lock (``_Listener``).
        async with source.db.autocommit() as conn:
            rows = (await conn.execute(take, {"done": done, "now": now})).all()
            self._unmarked.pop(source.producer, None)  # marked by that statement
            # The first row's age is the outbox's lag (0 when it is empty).
            OUTBOX_LAG(source.producer).set((now - rows[0].occurred_at).total_seconds() if rows else 0.0)
            if not rows:
                return 0
            sent = await self._publish(source, rows)
            confirmed = [row.id for row, ok in zip(rows, sent, strict=True) if ok]
            # The unconfirmed stay unpublished: the next pass retries them.
            if sqlite and confirmed:  # embedded: marked at once (its handlers share the file)
                await conn.execute(mark, {"ids": confirmed, "now": utcnow()})
            elif confirmed:
                self._unmarked[source.producer] = confirmed
        if confirmed:
            OUTBOX_PUBLISHED(source.producer).inc(len(confirmed))
        return len(confirmed)

    async def flush_marks(self) -> None:
        """Mark the rows published since their outbox's last read (each outbox: one statement)."""
        for source in self.sources:
            ids = self._unmarked.get(source.producer)
            if ids:
                _take, mark = _relay_statements(source.model.__table__, self.batch_size, source.db.is_sqlite)
                async with source.db.autocommit() as conn:
                    await conn.execute(mark, {"ids": ids, "now": utcnow()})
                self._unmarked.pop(source.producer, None)

    async def _publish(self, source: OutboxSource, rows: Sequence[Any]) -> list[bool]:
        """Publish ``rows`` in order; which ones the bus confirmed."""

        async def send(row: Any) -> None:
            payload = dict(row.payload)
            carried = payload.pop(OUTBOX_TRACE_KEY, None)  # the writer's trace; never sent in the payload
            event = Event(str(row.id), row.type, payload, iso_ms(row.occurred_at), source.producer)
            with span(f"{row.type} publish", kind=SpanKind.PRODUCER, parent=extract(carried),
                      attributes={"messaging.message.id": event.id, "eco2.producer": source.producer}):  # fmt: skip
                await self.bus.publish(event)

        if self.bus.concurrent_confirms:
            # Tasks start in order and the channel writes frames in order; the confirms come back together.
            results = await asyncio.gather(*(send(row) for row in rows), return_exceptions=True)
            failures = [result for result in results if isinstance(result, BaseException)]
            sent = [not isinstance(result, BaseException) for result in results]
        else:
            sent, failures = [], []
            for row in rows:
                if failures:  # keep order: nothing after a failed row
                    sent.append(False)
                    continue
                try:
                    await send(row)
                    sent.append(True)
                except Exception as exc:
                    failures.append(exc)
                    sent.append(False)
        if failures:
            OUTBOX_FAILURES(source.producer).inc()
            log.warning("relay_publish_failed", producer=source.producer, error=repr(failures[0]),
                        unconfirmed=len(failures))  # fmt: skip
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure  # cancellation: the transaction rolls back, every row stays unpublished
        return sent

    async def purge_published(self) -> None:
        cutoff = utcnow() - self.retention
        for source in self.sources:
            async with source.db.session() as session:
                model = source.model
                await session.execute(delete(model).where(model.published_at.is_not(None), model.published_at < cutoff))

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        last_purge = loop.time()
        async with AsyncExitStack() as stack:
            stack.callback(on_outbox_commit(self.wake))
            listeners = [_Listener(group[0].db, self.wake) for group in self._groups() if not group[0].db.is_sqlite]
            for listener in listeners:
                stack.push_async_callback(listener.close)
            hinted: set[str] | None = None
            while not stop.is_set():
                try:
                    for listener in listeners:
                        await listener.ensure()  # (re)subscribe before the pass: no commit falls in between
                    self._standby = {listener.db.url for listener in listeners if not listener.leading}
                    published = await self.relay_once(hinted)
                    failures = 0
                    if loop.time() - last_purge > self.purge_every:
                        last_purge = loop.time()
                        await self.purge_published()
                except Exception as exc:
                    published = 0
                    failures += 1
                    log.warning("relay_pass_failed", error=repr(exc), failures=failures)
                if published >= self.batch_size:
                    hinted = None  # a backlog: keep draining, probing every outbox
                    continue
                if failures:
                    await wait_any(_backoff(min(failures, 7)), stop)
                    hinted = None
                    continue
                if published:
                    await wait_any(self.min_gap, stop)  # let the next commits gather into one pass
                if self._unmarked and not self._wake.is_set():
                    await wait_any(self.mark_delay, self._wake, stop)  # the next pass would mark them
                    if not self._wake.is_set():
                        await self._flush_marks_or_log()
                await wait_any(self.idle_interval, self._wake, stop)
                hinted = self._hinted if self._wake.is_set() else None
                self._hinted = None
                self._wake.clear()
            await self._flush_marks_or_log()  # stopping: while this relay still holds the lock

    async def _flush_marks_or_log(self) -> None:
        try:
            await self.flush_marks()
        except Exception as exc:  # kept for the next pass; lost only with the process (rows re-sent)
            log.warning("relay_mark_failed", error=repr(exc))


# The session-level advisory lock of the relay that passes over a PostgreSQL database's outboxes. A
# pass takes no row locks (``OutboxRelay._relay_source``), so a second relay process — a rolling
# update, a second replica by mistake — must not pass at the same time (it would publish the same rows
# twice: harmless for the inboxes, but wasted work). It waits as a standby instead, and takes over
# when PostgreSQL releases the lock: at once when the holder's connection ends, crash included.
RELAY_LOCK = int.from_bytes(b"eco2rely", "big") >> 1  # a bigint key of our own


class _Listener:
    """A connection ``LISTEN``ing for the writers' ``NOTIFY`` on one PostgreSQL database; it also
    holds the database's relay lock (``leading``) for as long as it lives."""

    def __init__(self, db: Database, wake: Callable[[str], None]) -> None:
        self.db = db
        self.wake = wake
        self.leading = False
        self._conn: Any = None  # SQLAlchemy AsyncConnection held for the subscription
        self._driver: Any = None  # its asyncpg connection

    async def ensure(self) -> None:
        if self._driver is not None and not self._driver.is_closed():
            if not self.leading:
                await self._lead()  # a standby: is the lock free now?
            return
        await self.close()
        conn = await self.db.engine.connect()
        try:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(OUTBOX_CHANNEL, self._notified)
        except BaseException:
            await conn.close()
            raise
        self._conn, self._driver = conn, driver
        await self._lead()
        if not self.leading:
            log.info("relay_standby", reason="another relay holds this database's relay lock")

    async def _lead(self) -> None:
        self.leading = bool(await self._driver.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK))

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload)

    async def close(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        self.leading = False  # the lock ends with the connection
        if driver is not None and not driver.is_closed():
            with contextlib.suppress(Exception):
                await driver.remove_listener(OUTBOX_CHANNEL, self._notified)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never hand a LISTENing connection back to the pool
            with contextlib.suppress(Exception):
                await conn.close()


@functools.cache
def _relay_statements(table: Any, batch_size: int, sqlite: bool) -> tuple[Any, Any]:
    """An outbox's take (rows to publish, oldest first) and mark (``published_at`` of ``ids``), built
    once: a relay pass then costs its round trips, not statement construction. On PostgreSQL the take
    also marks the rows ``done`` (published by the previous pass), in a CTE: that statement's read
    does not see its own update, so it leaves them out by id."""
    c = table.c
    now = bindparam("now", type_=c.published_at.type)
    mark = update(table).where(c.id.in_(bindparam("ids", expanding=True, type_=c.id.type))).values(published_at=now)
    take = select(c.id, c.type, c.payload, c.occurred_at).where(c.published_at.is_(None))
    if not sqlite:
        # One array parameter, not an expanding ``IN``: an empty expanding list renders as an
        # always-true ``NOT IN`` condition, which SQLAlchemy would then apply to the ``IN`` too.
        done = bindparam("done", type_=ARRAY(c.id.type))
        marked = update(table).where(c.id == any_(done)).values(published_at=now).cte("marked")
        take = take.add_cte(marked).where(c.id != all_(done))
    return take.order_by(c.occurred_at).limit(batch_size), mark


def _schema(source: OutboxSource) -> str:
    return str(source.model.__table__.schema or "")


async def wait_any(timeout: float, *events: asyncio.Event) -> None:
    """Sleep up to ``timeout`` seconds, waking early when any of ``events`` is set."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def consume_span(consumer: str, event: Event, headers: Mapping[str, Any] | None, delivery: int) -> Any:
    """A consumer's span for one delivery: a child of the relay's publish span (from the message's
    headers, or the current context when the bus delivers in-process)."""
    attributes = {"messaging.message.id": event.id, "eco2.consumer": consumer, "eco2.delivery": delivery}
    return span(f"{event.type} consume {consumer}", kind=SpanKind.CONSUMER, parent=extract(headers),
                attributes=attributes)  # fmt: skip


def _age(occurred_at: str) -> float:
    """Seconds since an event's ``occurred_at`` (0 if unreadable)."""
    try:
        return max(0.0, (utcnow() - datetime.fromisoformat(occurred_at)).total_seconds())
    except ValueError:
        return 0.0


def new_event_id() -> str:
    return str(uuid.uuid4())
