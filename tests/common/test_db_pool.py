"""The connection pool's disconnect handling (services/common/db.py): a connection that died while
idle is replaced before use; a busy one is not pinged on every checkout; the driver path drops a
connection that failed; a burst's connections stay pooled. And ``DriverStatement``'s parameters."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, bindparam, literal, select, text

from services.common import db as db_module
from services.common.db import Database, DriverStatement, UtcDateTime
from services.common.metrics import DB_POOLS

pytestmark = pytest.mark.real_only


async def _backend_pid(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


async def test_a_connection_killed_while_idle_is_replaced(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(database_url, "public", pool_size=1)
    try:
        first = await _backend_pid(database)
        # Another session ends the pooled connection's backend, as a server restart or a proxy would.
        killer = Database(database_url, "public", pool_size=1)
        async with killer.session() as session:
            assert await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await killer.dispose()
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # the connection counts as idle now
        second = await _backend_pid(database)  # no error: the ping found it dead, a new one was opened
        assert second != first
    finally:
        await database.dispose()


async def test_a_busy_connection_is_not_pinged(database_url: str) -> None:
    database = Database(database_url, "public", pool_size=1)
    pings = 0
    dialect = database.engine.sync_engine.dialect
    original = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        nonlocal pings
        pings += 1
        return original(dbapi_connection)

    dialect.do_ping = counting  # type: ignore[method-assign]
    try:
        pids = {await _backend_pid(database) for _ in range(20)}
        assert len(pids) == 1  # the same pooled connection every time
        assert pings == 0  # used moments ago: no SELECT 1 round trip before each transaction
    finally:
        await database.dispose()


async def test_a_burst_keeps_its_connections_for_the_next_one(database_url: str) -> None:
    """A load above the usual concurrency reuses the backends the last burst opened instead of opening
    (and closing) new ones on the hot path; the pool never holds more than its size."""
    database = Database(database_url, "pooltest", pool_size=6)
    held = asyncio.Event()

    async def burst(width: int) -> set[int]:
        async def one() -> int:
            async with database.driver() as pg:
                pid = int(await pg.fetchval("SELECT pg_backend_pid()"))
                await held.wait()  # every connection of the burst is checked out at once
                return pid

        tasks = [asyncio.create_task(one()) for _ in range(width)]
        await asyncio.sleep(0.3)
        # What the pool alert compares (Eco2DatabasePoolSaturated): a full pool has in use == its size.
        scraped = {(m.name, m.labels.get("state")): m.value for f in DB_POOLS.collect() for m in f.samples
                   if m.labels["service"] == "pooltest"}  # fmt: skip
        assert scraped[("eco2_db_pool_connections", "in_use")] == min(width, 6)
        assert scraped[("eco2_db_pool_size", None)] == 6
        held.set()
        pids = set(await asyncio.gather(*tasks))
        held.clear()
        return pids

    try:
        first = await burst(6)
        assert len(first) == 6
        assert await burst(6) == first  # the same six backends, none opened again
        assert len(await burst(9)) == 6  # three waited for a pooled connection instead of opening more
    finally:
        await database.dispose()


async def test_the_driver_drops_a_connection_that_died_in_use(database_url: str) -> None:
    """``Database.driver`` bypasses SQLAlchemy's disconnect handling, so it drops a failed connection
    itself: the next use gets a new one instead of the dead one back from the pool."""
    database = Database(database_url, "public", pool_size=1)
    try:
        async with database.driver() as pg:
            first = await pg.fetchval("SELECT pg_backend_pid()")
        killer = Database(database_url, "public", pool_size=1)
        async with killer.session() as session:
            assert await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await killer.dispose()
        with pytest.raises(Exception):  # noqa: B017 — asyncpg reports the killed backend in several ways
            async with database.driver() as pg:
                await pg.fetchval("SELECT 1")
        async with database.driver() as pg:
            assert await pg.fetchval("SELECT pg_backend_pid()") != first
    finally:
        await database.dispose()


async def test_a_driver_statement_applies_sqlalchemys_bind_processing(database_url: str) -> None:
    database = Database(database_url, "public", pool_size=1)
    try:
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9)))
        statement = select(
            bindparam("doc", type_=JSON).label("doc"),
            literal("fixed").label("fixed"),
            bindparam("at", type_=UtcDateTime).label("at"),
        )
        driver_statement = DriverStatement(statement, database.engine.dialect)
        async with database.driver() as pg:
            record = await pg.fetchrow(driver_statement.sql, *driver_statement.args({"doc": {"이름": [1]}, "at": at}))
        assert record["doc"] == {"이름": [1]}  # serialised as SQLAlchemy's JSON type does, read back as JSON
        assert record["fixed"] == "fixed"  # a literal needs no value
        assert record["at"] == at
        assert record["at"].utcoffset() == timedelta(0)  # stored as UTC
        with pytest.raises(ValueError):  # rendered only at execution: not a fixed text
            DriverStatement(select(literal(1)).where(literal("a").in_(["a", "b"])), database.engine.dialect)
    finally:
        await database.dispose()
