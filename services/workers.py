"""Background workers: the outbox relay, the event consumers of each service, and the workers a
service's registry entry names (``workers``, e.g. the scan pipeline).

Production runs each as its own Deployment (``eco2 worker relay``, ``eco2 worker consumers my``,
``eco2 worker scan``); ``eco2 dev`` runs them all as tasks inside the one dev process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import ModuleType

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.events import DeadLetter, EventBus, OutboxRelay, OutboxSource, Subscription, create_bus
from services.common.identity import load
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES

log = get_logger("eco2.workers")


def consumer_modules() -> dict[str, ModuleType]:
    """Each service's consumers module (``consumer`` and ``build``), by service name."""
    return {name: importlib.import_module(e.consumers) for name, e in SERVICES.items() if e.consumers}


def topology() -> dict[str, tuple[str, ...]]:
    """Every consumer queue and the event types bound to it, across all services."""
    consumers: dict[str, tuple[str, ...]] = {}
    for module in consumer_modules().values():
        consumers.update(module.consumer.topology())
    return consumers


def service_workers() -> dict[str, str]:
    """The workers registry entries name: command -> ``module:function(common, stop)``."""
    return {command: target for entry in SERVICES.values() for command, target in entry.workers.items()}


def outbox_sources(common: CommonSettings) -> list[OutboxSource]:
    """One source per service with an outbox (each on its own database; dispose ``source.db`` after)."""
    return [
        OutboxSource(name, Database(database_url_for(name, common.database_url, common.data_dir), name), load(e.outbox))
        for name, e in SERVICES.items()
        if e.outbox
    ]


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
    sources = outbox_sources(common)
    try:
        async with AsyncExitStack() as stack:
            if bus is None:
                bus = await stack.enter_async_context(event_bus(common))
            log.info("relay_started", producers=[s.producer for s in sources])
            await OutboxRelay(sources, bus).run(stop)
    finally:
        for source in sources:
            await source.db.dispose()


async def run_consumers(
    common: CommonSettings, services: Sequence[str], stop: asyncio.Event, *, bus: EventBus | None = None
) -> None:
    async with AsyncExitStack() as stack:
        if bus is None:
            bus = await stack.enter_async_context(event_bus(common))
        subscriptions: list[Subscription] = []
        modules = consumer_modules()
        for name in services:
            if name not in modules:
                continue
            runtime = ServiceRuntime(name, name, common)
            stack.push_async_callback(runtime.close)
            subscriptions.extend(modules[name].build(runtime))
        log.info("consumers_started", consumers=[s.consumer for s in subscriptions])
        await asyncio.gather(*(bus.consume(subscription, stop) for subscription in subscriptions))


@asynccontextmanager
async def background_workers(common: CommonSettings) -> AsyncIterator[None]:
    """Relay, every consumer and every service worker as tasks of the current process (``eco2 dev``)."""
    stop = asyncio.Event()
    async with event_bus(common) as bus:
        consumers = asyncio.create_task(run_consumers(common, list(SERVICES), stop, bus=bus))
        await asyncio.sleep(0)  # let consumers attach before the relay starts handing out events
        relay = asyncio.create_task(run_relay(common, stop, bus=bus))
        workers = [asyncio.create_task(load(target)(common, stop)) for target in service_workers().values()]
        try:
            yield
        finally:
            stop.set()
            for task in (*workers, relay, consumers):
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
