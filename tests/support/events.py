"""Running the event machinery in tests: relay + consumers as tasks, fake producers, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aio_pika
from sqlalchemy.orm import DeclarativeBase

from services.common.clock import iso_ms, utcnow
from services.common.config import CommonSettings
from services.common.db import Database, database_url_for, service_metadata
from services.common.domain_events import DomainEvent, ScanRewardGranted, reward_points
from services.common.events import Event, EventBus, OutboxRelay, OutboxSource, new_event_id
from services.common.knowledge import character_for_middle
from services.common.outbox import OutboxMixin
from services.registry import SERVICES
from services.workers import event_bus, outbox_sources, run_consumers, topology

ALL_CONSUMERS = tuple(name for name, entry in SERVICES.items() if entry.consumers)


@dataclass
class Workers:
    bus: EventBus
    relay: OutboxRelay


@asynccontextmanager
async def event_workers(
    common: CommonSettings,
    *,
    consumers: Sequence[str] = ALL_CONSUMERS,
    extra_sources: Sequence[OutboxSource] = (),
    idle_interval: float = 0.05,
) -> AsyncIterator[Workers]:
    """What ``eco2 dev`` runs in the background (relay + consumers), plus test-only producers."""
    stop = asyncio.Event()
    own = outbox_sources(common)
    sources = [*own, *extra_sources]
    async with event_bus(common) as bus:
        consuming = asyncio.create_task(run_consumers(common, list(consumers), stop, bus=bus))
        await asyncio.sleep(0.1)  # let consumers attach (events published earlier wait in their queues anyway)
        relay = OutboxRelay(sources, bus, idle_interval=idle_interval)
        relaying = asyncio.create_task(relay.run(stop))
        try:
            yield Workers(bus, relay)
        finally:
            stop.set()
            for task in (relaying, consuming):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=15)
            for source in own:
                await source.db.dispose()


def envelope(event: DomainEvent, producer: str = "test", event_id: str | None = None) -> Event:
    """``event`` as the bus carries it (what a relay would publish from an outbox row)."""
    return Event(event_id or new_event_id(), event.name, event.payload(), iso_ms(utcnow()), producer)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def delete_broker_objects(common: CommonSettings, extra_consumers: Sequence[str] = ()) -> None:
    """Remove this run's exchanges and queues from the shared RabbitMQ."""
    assert common.rabbitmq_url
    ns = common.events_namespace
    connection = await aio_pika.connect_robust(common.rabbitmq_url, timeout=10)
    try:
        for consumer in [*topology(), *extra_consumers]:
            for name in (f"{ns}.{consumer}", f"{ns}.{consumer}.dlq"):
                async with connection.channel() as channel:  # a failed delete closes its channel
                    with contextlib.suppress(Exception):
                        await channel.queue_delete(name)
        for name in (f"{ns}.events", f"{ns}.dlx"):
            async with connection.channel() as channel:
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(name)
    finally:
        await connection.close()


# ------------------------------------------------------------------ a stand-in for the scan service


class ScanBase(DeclarativeBase):
    metadata = service_metadata("scanfake")


class ScanOutbox(OutboxMixin, ScanBase):
    """The outbox a scan service writes ``scan.reward_granted`` to (the real one is built elsewhere)."""


@asynccontextmanager
async def fake_scan_producer(common: CommonSettings) -> AsyncIterator[tuple[Database, OutboxSource]]:
    db = Database(database_url_for("scanfake", common.database_url, common.data_dir), "scanfake")
    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            await conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS scanfake")
        await conn.run_sync(ScanBase.metadata.create_all)
    try:
        yield db, OutboxSource("scan", db, ScanOutbox)
    finally:
        await db.dispose()


def scan_reward(
    user_id: uuid.UUID, job_id: uuid.UUID | None = None, *, middle: str = "종이", received: bool = True
) -> ScanRewardGranted:
    """A ``scan.reward_granted`` event as the scan pipeline emits it for an eligible scan of ``middle``."""
    character = character_for_middle(middle)
    assert character is not None, middle
    return ScanRewardGranted(
        user_id=user_id,
        job_id=job_id or uuid.uuid4(),
        character_code=character.code,
        character_name=character.name,
        received=received,
        points=reward_points(received),
    )


async def emit_scan(db: Database, *events: DomainEvent) -> None:
    async with db.session() as session:
        for event in events:
            ScanOutbox.emit(session, event)
