"""The event kernel on both transports: outbox → relay → bus → idempotent consumer → dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import String, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import events
from services.common.clock import utcnow
from services.common.config import CommonSettings, get_common_settings
from services.common.db import Database, database_url_for, service_metadata
from services.common.domain_events import DomainEvent
from services.common.events import (
    Consumer,
    Event,
    EventBus,
    InboxMixin,
    InProcessBus,
    OutboxRelay,
    OutboxSource,
    RabbitBus,
    Subscription,
)
from services.common.outbox import OutboxMixin, announce
from tests.conftest import RABBITMQ_URL, REAL


class Base(DeclarativeBase):
    metadata = service_metadata("evtest")


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Tally(Base):
    __tablename__ = "tally"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


@pytest.fixture
async def db(common_settings: CommonSettings) -> AsyncIterator[Database]:
    database = Database(database_url_for("evtest", common_settings.database_url, common_settings.data_dir), "evtest")
    async with database.engine.begin() as conn:
        if not database.is_sqlite:
            await conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS evtest")
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.dispose()


class OtherBase(DeclarativeBase):
    metadata = service_metadata("evtest2")


class OtherOutbox(OutboxMixin, OtherBase):
    pass


@pytest.fixture
async def other_db(common_settings: CommonSettings) -> AsyncIterator[Database]:
    """A second producer: on PostgreSQL the same database (its own schema), as the services share one."""
    database = Database(database_url_for("evtest2", common_settings.database_url, common_settings.data_dir), "evtest2")
    async with database.engine.begin() as conn:
        if not database.is_sqlite:
            await conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS evtest2")
        await conn.run_sync(OtherBase.metadata.drop_all)
        await conn.run_sync(OtherBase.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    if not REAL:
        yield InProcessBus(max_deliveries=3)
        return
    rabbit = RabbitBus(RABBITMQ_URL, namespace=f"eco2test-{uuid.uuid4().hex[:8]}", max_deliveries=3)
    yield rabbit
    assert rabbit._connection is not None
    async with rabbit._connection.channel() as channel:  # leave no queues behind on the shared broker
        for name in ("tally", "tally.dlq"):
            await channel.queue_delete(f"{rabbit.namespace}.{name}")
        await channel.exchange_delete(rabbit.exchange_name)
        await channel.exchange_delete(rabbit.dlx_name)
    await rabbit.close()


async def count(db: Database, key: str) -> int:
    async with db.session() as session:
        row = await session.get(Tally, key)
        return row.count if row else 0


class TallyBump(DomainEvent):
    name = "tally.bump"

    key: str


tally: Consumer[dict[str, int]] = Consumer("tally", Inbox)


@tally.on(TallyBump)
async def bump(fail_times: dict[str, int], session: AsyncSession, event: TallyBump) -> None:
    if fail_times.get(event.key, 0) > 0:
        fail_times[event.key] -= 1
        raise RuntimeError("simulated crash mid-event")
    row = await session.get(Tally, event.key)
    if row is None:
        session.add(Tally(key=event.key, count=1))
    else:
        row.count += 1


def tally_subscription(db: Database, fail_times: dict[str, int]) -> Subscription:
    return tally.subscription(db, fail_times)


async def eventually(check: Any, timeout: float = 90.0) -> None:
    """Poll ``check`` until true. The deadline only bounds a failure: quorum-queue redeliveries and
    dead-lettering on a loaded shared broker take seconds, which a tight deadline turned into failures."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_outbox_event_is_applied_once_even_when_published_twice(db: Database, bus: EventBus) -> None:
    fail: dict[str, int] = {}
    stop = asyncio.Event()
    await bus.declare({"tally": ("tally.bump",)})
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, fail), stop))
    key = uuid.uuid4().hex
    async with db.session() as session:
        Outbox.emit(session, TallyBump(key=key))
    relay = OutboxRelay([OutboxSource("evtest", db, Outbox)], bus)
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0  # marked published
    async with db.session() as session:
        row = (await session.execute(select(Outbox))).scalars().one()
        duplicate = Event(str(row.id), row.type, row.payload, "", "evtest")
    await bus.publish(duplicate)  # at-least-once transport: a redelivery must change nothing
    await eventually(lambda: _inbox_size(db, 1))
    await asyncio.sleep(0.3)
    assert await count(db, key) == 1
    stop.set()
    await consumer


async def test_crash_mid_event_is_retried_and_lands_once(db: Database, bus: EventBus) -> None:
    key = uuid.uuid4().hex
    fail = {key: 1}
    stop = asyncio.Event()
    # The queue and its bindings exist before anything is published (on RabbitMQ an event published
    # before its queue is bound is dropped, and how long the consumer task takes to bind is up to
    # the machine's load): declared here, not hoped for after a sleep.
    await bus.declare(tally.topology())
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, fail), stop))
    await bus.publish(Event(str(uuid.uuid4()), "tally.bump", {"key": key}, "", "test"))

    async def landed() -> bool:
        return await count(db, key) == 1

    await eventually(landed)
    assert await bus.dead_letters("tally") == []
    stop.set()
    await consumer


async def test_poison_event_is_dead_lettered_and_replayable(db: Database, bus: EventBus) -> None:
    key = uuid.uuid4().hex
    fail = {key: 10}  # more failures than deliveries allowed
    stop = asyncio.Event()
    # The queue and its bindings exist before anything is published (on RabbitMQ an event published
    # before its queue is bound is dropped, and how long the consumer task takes to bind is up to
    # the machine's load): declared here, not hoped for after a sleep.
    await bus.declare(tally.topology())
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, fail), stop))
    event = Event(str(uuid.uuid4()), "tally.bump", {"key": key}, "", "test")
    await bus.publish(event)

    async def parked() -> bool:
        return [letter.event.id for letter in await bus.dead_letters("tally")] == [event.id]

    await eventually(parked)
    assert await count(db, key) == 0
    fail[key] = 0  # the bug is fixed: replay
    assert await bus.replay("tally") == 1

    async def landed() -> bool:
        return await count(db, key) == 1

    await eventually(landed)
    assert await bus.dead_letters("tally") == []
    stop.set()
    await consumer


async def test_a_payload_not_matching_its_model_is_parked_at_once(db: Database, bus: EventBus) -> None:
    key = uuid.uuid4().hex
    fail: dict[str, int] = {}
    stop = asyncio.Event()
    # The queue and its bindings exist before anything is published (on RabbitMQ an event published
    # before its queue is bound is dropped, and how long the consumer task takes to bind is up to
    # the machine's load): declared here, not hoped for after a sleep.
    await bus.declare(tally.topology())
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, fail), stop))
    broken = Event(str(uuid.uuid4()), "tally.bump", {"kee": key}, "", "test")  # no ``key``: never applicable
    await bus.publish(broken)
    await bus.publish(Event(str(uuid.uuid4()), "tally.bump", {"key": key}, "", "test"))

    async def parked() -> bool:
        return [letter.event.id for letter in await bus.dead_letters("tally")] == [broken.id]

    await eventually(parked)
    [letter] = await bus.dead_letters("tally")
    assert "does not match its model" in letter.reason or letter.reason == "rejected"
    # The valid event after it is applied (parked first says nothing about when the next one lands).

    async def applied() -> bool:
        return await count(db, key) == 1

    await eventually(applied)
    assert await _inbox_size(db, 1)  # the broken one never reached a handler's transaction
    stop.set()
    await consumer


def test_every_consumer_declares_its_bindings_from_its_handlers() -> None:
    assert tally.topology() == {"tally": ("tally.bump",)}
    with pytest.raises(ValueError, match="already handles"):
        tally.on(TallyBump)(bump)


async def _inbox_size(db: Database, expected: int) -> bool:
    async with db.session() as session:
        return len((await session.execute(select(Inbox))).scalars().all()) == expected


async def test_relay_finds_the_outboxes_holding_rows_and_publishes_each_row_once(
    db: Database, other_db: Database, bus: EventBus
) -> None:
    """The idle probe (one query for every outbox of a database) must still see each new row."""
    await bus.declare({"tally": ("tally.bump",)})
    relay = OutboxRelay([OutboxSource("evtest", db, Outbox), OutboxSource("evtest2", other_db, OtherOutbox)], bus)
    assert await relay.relay_once() == 0
    async with other_db.session() as session:
        OtherOutbox.emit(session, TallyBump(key="second"))
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0
    async with db.session() as session:
        Outbox.emit(session, TallyBump(key="first"))
    async with other_db.session() as session:
        OtherOutbox.emit(session, TallyBump(key="second-again"))
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0
    for database, model in ((db, Outbox), (other_db, OtherOutbox)):
        async with database.session() as session:
            rows = (await session.execute(select(model))).scalars().all()
        assert rows
        assert all(row.published_at is not None for row in rows)


class FlakyBus(InProcessBus):
    """Refuses the events whose key is in ``refuse``; records what it took, in order."""

    def __init__(self, refuse: set[str], concurrent: bool) -> None:
        super().__init__()
        self.refuse = refuse
        self.concurrent_confirms = concurrent
        self.taken: list[str] = []

    async def publish(self, event: Event) -> None:
        await asyncio.sleep(0)
        if event.payload["key"] in self.refuse:
            raise ConnectionError("not confirmed")
        self.taken.append(event.payload["key"])


@pytest.mark.parametrize("concurrent", [True, False])
async def test_a_pass_keeps_confirmed_rows_marked_and_leaves_the_rest_for_the_next(
    db: Database, concurrent: bool
) -> None:
    keys = [f"k{n}" for n in range(4)]
    async with db.session() as session:
        for key in keys:
            Outbox.emit(session, TallyBump(key=key))
            await session.flush()  # distinct occurred_at order
    bus = FlakyBus({"k1"}, concurrent)
    relay = OutboxRelay([OutboxSource("evtest", db, Outbox)], bus)
    # Confirms awaited together: all but the refused one are marked; in order: nothing after it.
    assert await relay.relay_once() == (3 if concurrent else 1)
    assert bus.taken == (["k0", "k2", "k3"] if concurrent else ["k0"])
    bus.refuse.clear()
    assert await relay.relay_once() == (1 if concurrent else 3)
    assert sorted(bus.taken) == keys  # each once
    assert await relay.relay_once() == 0
    async with db.session() as session:
        assert all(row.published_at is not None for row in (await session.execute(select(Outbox))).scalars())


async def test_the_relay_wakes_on_a_commit_notice_not_its_poll(db: Database, bus: EventBus) -> None:
    fail: dict[str, int] = {}
    stop = asyncio.Event()
    await bus.declare({"tally": ("tally.bump",)})
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, fail), stop))
    relay = OutboxRelay([OutboxSource("evtest", db, Outbox)], bus, idle_interval=3600)
    relaying = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.5)  # the first (probing) pass is over: from now on only a notice wakes it
    key = uuid.uuid4().hex
    async with db.session() as session:
        Outbox.emit(session, TallyBump(key=key))
    await eventually(lambda: _has(db, key), timeout=30)
    async with db.session() as session:  # a rolled-back emit notifies nothing and publishes nothing
        Outbox.emit(session, TallyBump(key="never"))
        await session.rollback()
    stop.set()
    await asyncio.gather(relaying, consumer)


async def _has(db: Database, key: str) -> bool:
    return await count(db, key) == 1


@pytest.mark.skipif(not REAL, reason="PostgreSQL NOTIFY")
async def test_a_committed_emit_notifies_listeners_in_other_processes(db: Database) -> None:
    """What a relay in another process hears: the ``NOTIFY`` of the emitting transaction, at commit only."""
    from services.common.events import _Listener

    heard: list[str] = []
    listener = _Listener(db, heard.append)
    await listener.ensure()
    try:
        async with db.session() as session:
            Outbox.emit(session, TallyBump(key="a"))
            await session.flush()
            await session.rollback()
        async with db.session() as session:
            Outbox.emit(session, TallyBump(key="b"))
            Outbox.emit(session, TallyBump(key="c"))
        await eventually(lambda: _true(heard))
        await asyncio.sleep(0.2)
        assert heard == ["evtest"]  # once per transaction and outbox, none for the rollback
    finally:
        await listener.close()


async def _true(values: list[str]) -> bool:
    return bool(values)


async def core_emit(db: Database, key: str) -> None:
    """What the scan worker does: the outbox row in a Core transaction, announced after its commit."""
    row = {"id": uuid.uuid4(), "type": "tally.bump", "payload": {"key": key}, "occurred_at": utcnow()}
    async with db.transaction() as conn:
        await conn.execute(insert(Outbox), row)
    announce(db, "evtest")


@pytest.mark.skipif(not REAL, reason="PostgreSQL NOTIFY")
async def test_core_commits_are_announced_to_other_processes_coalesced(db: Database) -> None:
    from services.common.events import _Listener

    loop = asyncio.get_running_loop()
    heard: list[tuple[float, str]] = []
    listener = _Listener(db, lambda schema: heard.append((loop.time(), schema)))
    await listener.ensure()
    interval = get_common_settings().outbox_announce_interval
    try:
        await asyncio.sleep(2 * interval)  # nothing of an earlier test pending
        started = loop.time()
        await core_emit(db, "alone")
        await eventually(lambda: _true(heard), timeout=5)
        assert heard[0][0] - started < 1.0  # well inside the relay's 2 s safety poll
        heard.clear()
        started = loop.time()
        await asyncio.gather(*(core_emit(db, f"k{n}") for n in range(40)))
        last_commit = loop.time()
        await asyncio.sleep(3 * interval)
        assert {schema for _, schema in heard} == {"evtest"}
        # Coalesced: at most one notice per interval (plus the one in flight), not one per commit …
        assert len(heard) <= (last_commit - started) / interval + 2
        assert len(heard) < 40
        # … and the last commit is announced after it happened.
        assert heard[-1][0] >= last_commit
    finally:
        await listener.close()


async def test_the_relay_wakes_on_a_core_writers_announce(db: Database, bus: EventBus) -> None:
    stop = asyncio.Event()
    await bus.declare({"tally": ("tally.bump",)})
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, {}), stop))
    relay = OutboxRelay([OutboxSource("evtest", db, Outbox)], bus, idle_interval=3600)
    relaying = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.5)  # the first (probing) pass is over: from now on only a notice wakes it
    key = uuid.uuid4().hex
    await core_emit(db, key)
    await eventually(lambda: _has(db, key), timeout=30)
    stop.set()
    await asyncio.gather(relaying, consumer)


async def test_a_batch_is_applied_in_one_transaction_once_per_event_id(db: Database) -> None:
    subscription = tally_subscription(db, {"bad": 1})
    assert subscription.batch_handler is not None
    first, second = (envelope_of(TallyBump(key=key)) for key in ("one", "two"))
    await subscription.batch_handler([first, second, first])  # the same id twice in a batch: once
    await subscription.batch_handler([second])  # a redelivery: nothing
    assert (await count(db, "one"), await count(db, "two")) == (1, 1)
    failing = envelope_of(TallyBump(key="bad"))
    third = envelope_of(TallyBump(key="three"))
    with pytest.raises(RuntimeError):  # one handler fails: the whole batch rolls back
        await subscription.batch_handler([third, failing])
    assert await count(db, "three") == 0
    await subscription.handler(third)  # what the bus then does: each alone
    await subscription.handler(failing)
    assert (await count(db, "three"), await count(db, "bad")) == (1, 1)
    assert await _inbox_size(db, 4)


def envelope_of(event: DomainEvent) -> Event:
    return Event(str(uuid.uuid4()), event.name, event.payload(), "2026-01-01T00:00:00.000Z", "evtest")


class DyingBus(FlakyBus):
    """The relay's process dies while the third publish is in flight (its task is cancelled)."""

    async def publish(self, event: Event) -> None:
        if event.payload["key"] == "k2":
            raise asyncio.CancelledError
        await super().publish(event)


@pytest.mark.parametrize("concurrent", [True, False])
async def test_a_relay_dying_mid_pass_leaves_every_row_of_the_pass_to_publish_again(
    db: Database, concurrent: bool
) -> None:
    async with db.session() as session:
        for n in range(4):
            Outbox.emit(session, TallyBump(key=f"k{n}"))
            await session.flush()
    with pytest.raises(asyncio.CancelledError):
        await OutboxRelay([OutboxSource("evtest", db, Outbox)], DyingBus(set(), concurrent)).relay_once()
    async with db.session() as session:  # the pass's marks rolled back with it: nothing is lost
        assert all(row.published_at is None for row in (await session.execute(select(Outbox))).scalars())
    again = FlakyBus(set(), concurrent)
    assert await OutboxRelay([OutboxSource("evtest", db, Outbox)], again).relay_once() == 4
    assert again.taken == ["k0", "k1", "k2", "k3"]  # in order; k0/k1 twice overall: the inboxes absorb that


async def test_a_relay_dying_after_publishing_before_marking_leaves_the_rows_to_publish_again(db: Database) -> None:
    """On PostgreSQL a pass's marks ride on the next pass's read (or a flush when idle): a relay that
    dies in between is replaced by one that publishes those rows again (the inboxes absorb them)."""
    async with db.session() as session:
        for n in range(2):
            Outbox.emit(session, TallyBump(key=f"k{n}"))
            await session.flush()
    first_bus = FlakyBus(set(), concurrent=True)
    assert await OutboxRelay([OutboxSource("evtest", db, Outbox)], first_bus).relay_once() == 2
    # … the process dies here, before its next pass or its flush.
    bus = FlakyBus(set(), concurrent=True)
    relay = OutboxRelay([OutboxSource("evtest", db, Outbox)], bus)
    assert await relay.relay_once() == (0 if db.is_sqlite else 2)  # embedded marks at once
    assert await relay.relay_once() == 0  # this pass's read marked the previous pass's rows
    await relay.flush_marks()
    async with db.session() as session:
        assert all(row.published_at is not None for row in (await session.execute(select(Outbox))).scalars())


@pytest.mark.skipif(not REAL, reason="PostgreSQL advisory lock")
async def test_a_second_relay_stands_by_until_the_first_stops(db: Database) -> None:
    buses = FlakyBus(set(), concurrent=True), FlakyBus(set(), concurrent=True)
    stops = asyncio.Event(), asyncio.Event()
    relays = [OutboxRelay([OutboxSource("evtest", db, Outbox)], bus, idle_interval=0.2) for bus in buses]
    first = asyncio.create_task(relays[0].run(stops[0]))
    await asyncio.sleep(0.5)  # the first holds the database's relay lock
    second = asyncio.create_task(relays[1].run(stops[1]))

    async def emit(key: str) -> None:
        async with db.session() as session:
            Outbox.emit(session, TallyBump(key=key))

    async def taken(bus: FlakyBus, keys: list[str]) -> bool:
        return bus.taken == keys

    try:
        await emit("k0")
        await eventually(lambda: taken(buses[0], ["k0"]), timeout=10)
        await asyncio.sleep(0.5)  # polls and notices of the standby: it publishes nothing
        assert relays[1]._standby == {db.url}
        assert buses[1].taken == []
        stops[0].set()
        await first  # its connection, and with it the lock, ends with it
        await emit("k1")
        await eventually(lambda: taken(buses[1], ["k1"]), timeout=10)
        assert buses[0].taken == ["k0"]
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(first, second)


@pytest.mark.skipif(not REAL, reason="PostgreSQL advisory lock")
async def test_a_relay_that_loses_its_connection_takes_its_lock_again(db: Database) -> None:
    from services.common.events import RELAY_LOCK

    holder = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid::bigint = :high AND objid::bigint = :low"
    )
    key = {"high": RELAY_LOCK >> 32, "low": RELAY_LOCK & 0xFFFFFFFF}

    async def holder_pid() -> int | None:
        async with db.autocommit() as conn:
            return (await conn.execute(holder, key)).scalar()

    bus, stop = FlakyBus(set(), concurrent=True), asyncio.Event()
    relaying = asyncio.create_task(OutboxRelay([OutboxSource("evtest", db, Outbox)], bus, idle_interval=0.2).run(stop))
    try:
        await eventually(lambda: _true_async(holder_pid), timeout=10)
        first = await holder_pid()
        async with db.autocommit() as conn:  # the listener's connection dies (a restart, a network cut)
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        async with db.session() as session:
            Outbox.emit(session, TallyBump(key="after"))
        await eventually(lambda: _taken(bus, ["after"]), timeout=15)
        again = await holder_pid()
        assert again is not None
        assert again != first  # a new connection holds it
    finally:
        stop.set()
        await relaying


async def _true_async(check: Any) -> bool:
    return await check() is not None


async def _taken(bus: FlakyBus, keys: list[str]) -> bool:
    return bus.taken == keys


@pytest.mark.skipif(not REAL, reason="aio-pika cancels a closing channel's callbacks (RabbitMQ)")
async def test_a_burst_cut_short_by_its_channel_closing_does_not_stall_the_consumer(
    db: Database, bus: RabbitBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first message of a burst waits BURST_WAIT for the rest; the channel closing meanwhile (a broker
    # outage) cancels that wait. Seen in the broker fault run: the burst stayed behind, every later
    # message joined it and waited for a leader that was gone, and the consumer stalled for good.
    monkeypatch.setattr(events, "BURST_WAIT", 2.0)
    opened: list[Any] = []
    open_consumer = bus._open_consumer

    async def spy(consumer: str) -> Any:
        channel, queue = await open_consumer(consumer)
        opened.append(channel)
        return channel, queue

    async def waiting() -> bool:  # the burst's first message was delivered (none ready): its wait is under way
        assert bus._connection is not None
        async with bus._connection.channel() as channel:
            queue = await channel.declare_queue(bus.queue_name("tally"), passive=True)
        return len(opened) == 1 and queue.declaration_result.message_count == 0

    monkeypatch.setattr(bus, "_open_consumer", spy)
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    stop = asyncio.Event()
    await bus.declare(tally.topology())
    consumer = asyncio.create_task(bus.consume(tally_subscription(db, {}), stop))
    try:
        await bus.publish(Event(str(uuid.uuid4()), "tally.bump", {"key": first}, "", "test"))
        await eventually(waiting)
        # The channel underneath goes away as in an outage: its callbacks are cancelled, the broker
        # requeues the unacked message, and aio-pika restores the channel and its consumer.
        underlay = await opened[0].get_underlay_channel()
        await underlay.close()
        monkeypatch.setattr(events, "BURST_WAIT", 0.005)
        await bus.publish(Event(str(uuid.uuid4()), "tally.bump", {"key": second}, "", "test"))
        await eventually(lambda: _has(db, first), timeout=30)
        await eventually(lambda: _has(db, second), timeout=30)
    finally:  # a failure must not leave the consumer running into the fixture's teardown
        stop.set()
        await consumer


@pytest.mark.skipif(not REAL, reason="RabbitMQ publish channel")
async def test_a_publish_channel_left_closed_is_opened_again_on_the_next_publish(bus: RabbitBus) -> None:
    # After a broker outage aio-pika restores its robust channels; one whose restore failed stayed
    # closed, and every later publish of the relay failed with ChannelInvalidStateError (seen once in
    # the broker fault run: the rewards of the outage never reached `my`).
    await bus.declare(tally.topology())
    assert bus._publish_channel is not None
    stale = bus._publish_channel
    await stale.close()
    await bus.publish(Event(str(uuid.uuid4()), "tally.bump", {"key": uuid.uuid4().hex}, "", "test"))
    assert bus._publish_channel is not stale
    assert not bus._publish_channel.is_closed
    assert bus._connection is not None
    async with bus._connection.channel() as channel:
        queue = await channel.declare_queue(bus.queue_name("tally"), passive=True)
    assert queue.declaration_result.message_count == 1  # confirmed by the broker, waiting in the queue
