"""The connection pool's disconnect handling (services/common/db.py): a connection that died while
idle is replaced before use; a busy one is not pinged on every checkout."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from services.common import db as db_module
from services.common.db import Database

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
