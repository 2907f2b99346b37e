"""Background workers: the outbox relay and the event consumers of each service.

Production runs each as its own Deployment (``eco2 worker relay``, ``eco2 worker consumers my``);
``eco2 dev`` runs them all as tasks inside the one dev process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.events import DeadLetter, EventBus, OutboxRelay, OutboxSource, Subscription, create_bus
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES, load

log = get_logger("eco2.workers")


def topology() -> dict[str, tuple[str, ...]]:
    """Every consumer queue and the event types bound to it, across all services."""
    consumers: dict[str, tuple[str, ...]] = {}
    for entry in SERVICES.values():
        if entry.consumers:
            consumers.update(importlib.import_module(entry.consumers).EVENT_TYPES)
    return consumers


@asynccontextmanager
async def event_bus(common: CommonSettings) -> AsyncIterator[EventBus]:
    bus = create_bus(common)
    await bus.declare(topology())
    try:
        yield bus
    finally:
        if common.rabbitmq_url:
            await bus.close()


async def run_relay(common: CommonSettings, stop: asyncio.Event, *, bus: EventBus | None = None) -> None:
    databases: list[Database] = []
    sources: list[OutboxSource] = []
    for entry in SERVICES.values():
        if entry.outbox:
            db = Database(database_url_for(entry.name, common.database_url, common.data_dir), entry.db_schema)
            databases.append(db)
            sources.append(OutboxSource(entry.name, db, load(entry.outbox)))
    try:
        async with AsyncExitStack() as stack:
            if bus is None:
                bus = await stack.enter_async_context(event_bus(common))
            log.info("relay_started", producers=[s.producer for s in sources])
            await OutboxRelay(sources, bus).run(stop)
    finally:
        for db in databases:
            await db.dispose()


async def run_consumers(
    common: CommonSettings, services: Sequence[str], stop: asyncio.Event, *, bus: EventBus | None = None
) -> None:
    async with AsyncExitStack() as stack:
        if bus is None:
            bus = await stack.enter_async_context(event_bus(common))
        subscriptions: list[Subscription] = []
        for name in services:
            entry = SERVICES[name]
            if not entry.consumers:
                continue
            runtime = ServiceRuntime(name, entry.db_schema, common)
            stack.push_async_callback(runtime.close)
            subscriptions.extend(importlib.import_module(entry.consumers).build(runtime))
        log.info("consumers_started", consumers=[s.consumer for s in subscriptions])
        await asyncio.gather(*(bus.consume(subscription, stop) for subscription in subscriptions))


@asynccontextmanager
async def background_workers(common: CommonSettings) -> AsyncIterator[None]:
    """All event workers and the scan pipeline worker as tasks of the current process (``eco2 dev``)."""
    from services.scan.worker import run_scan_worker

    stop = asyncio.Event()
    async with event_bus(common) as bus:
        consumers = asyncio.create_task(run_consumers(common, list(SERVICES), stop, bus=bus))
        await asyncio.sleep(0)  # let consumers attach before the relay starts handing out events
        relay = asyncio.create_task(run_relay(common, stop, bus=bus))
        scan = asyncio.create_task(run_scan_worker(common, stop))
        try:
            yield
        finally:
            stop.set()
            for task in (scan, relay, consumers):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)


async def dead_letters(common: CommonSettings, consumer: str) -> list[DeadLetter]:
    """What ``eco2 events dead-letters`` shows: the consumer's parked events (left in place)."""
    bus = create_bus(common)
    try:
        return await bus.dead_letters(consumer)
    finally:
        await bus.close()


async def replay_dead_letters(common: CommonSettings, consumer: str) -> int:
    """What ``eco2 events replay`` does: move the consumer's parked events back to its queue."""
    bus = create_bus(common)
    try:
        return await bus.replay(consumer)
    finally:
        await bus.close()
