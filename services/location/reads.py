"""Sessions for the map's read-only queries: one database round trip per query, nothing else.

Through the service's ordinary ``Database`` a nearby search costs four round trips: the pool's
pre-ping, ``BEGIN``, the query, ``COMMIT``. On a busy machine each one waits for the PostgreSQL
process to be scheduled, and together they cost more than the search itself (profiled: ≈ 60 % of
the wall time of a 200-entry ``/centers`` at load 13). The sites table is only read here, and one
statement needs no transaction, so on PostgreSQL this uses its own small pool of **autocommit**
connections (no ``BEGIN``/``COMMIT``) **without pre-ping**: instead, a query that fails because its
connection was dropped (a database restart) is retried once on a fresh connection — SQLAlchemy
invalidates the whole pool on such an error, so the retry cannot meet another stale connection.
Any other error, or a second failure, propagates as usual (a 503 while the database is down).

SQLite (embedded) has no round trips to save: the service's ``Database`` is used as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from services.common.db import POOL_SIZE, Database

T = TypeVar("T")


class ReadSessions:
    def __init__(self, db: Database, pool_size: int = POOL_SIZE) -> None:
        self.db = db
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        if not db.is_sqlite:
            self.engine = create_async_engine(
                db.engine.url,
                isolation_level="AUTOCOMMIT",
                pool_size=pool_size,
                max_overflow=0,  # kept once opened, as the kernel's pools (services.common.db.POOL_SIZE)
                pool_recycle=1800,
            )
            self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    async def run(self, operation: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``operation`` with a read-only session (at most two attempts, see the module docstring)."""
        if self.sessionmaker is None:
            async with self.db.session() as session:
                return await operation(session)
        try:
            async with self.sessionmaker() as session:
                return await operation(session)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        async with self.sessionmaker() as session:
            return await operation(session)

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
