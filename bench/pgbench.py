"""Shared parts of the PostgreSQL benchmarks (location_centers, info_news, session): a database of
the bench's own on the shared server, percentiles and a timing loop.

The shared server is never reconfigured: each run creates its own database (``eco2_bench_<hex>``)
and drops it at the end, unless a name is given to keep (``keep=True``), so that an expensive data
set (1 M imported sites) can be measured again with other code.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

ADMIN_URL = os.environ.get("ECO2_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    dsn: str  # for asyncpg (postgresql://…)
    url: str  # for SQLAlchemy (postgresql+asyncpg://…)
    created: bool  # False: an existing database was reused (its data is already there)


@asynccontextmanager
async def bench_database(name: str | None = None, *, keep: bool = False) -> AsyncIterator[BenchDatabase]:
    """A database for one run: a fresh one (dropped afterwards), or ``name`` (created if missing;
    kept afterwards when ``keep``)."""
    name = name or f"eco2_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = f"{base}/{name}"
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        try:
            yield BenchDatabase(name, dsn, url, created=not exists)
        finally:
            if not keep:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    """Wall milliseconds of ``runs`` sequential calls."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def timed_cpu(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], list[float]]:
    """(wall, this thread's CPU) milliseconds of ``runs`` sequential calls. CPU time leaves out the
    time spent waiting for a core on a loaded machine (and the database's own work)."""
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.thread_time()
        await call()
        cpu.append((time.thread_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"
