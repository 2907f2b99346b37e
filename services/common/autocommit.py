"""One statement on a pooled connection without a transaction around it (hot read/insert paths).

An ORM session per request costs a unit of work (identity map, flush, state tracking) and, on
PostgreSQL, ``BEGIN`` + ``COMMIT`` round trips around the one statement it carries — more CPU than
a single-row read or insert itself (docs/benchmarks.md, issue 19). A single statement is atomic on
its own, so these paths run it in autocommit through Core. SQLite keeps its default (the driver's
implicit transaction), committed when the block ends.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import Database

_ENGINES: WeakKeyDictionary[Database, AsyncEngine] = WeakKeyDictionary()


def single_statement(db: Database) -> AbstractAsyncContextManager[AsyncConnection]:
    """``async with single_statement(db) as conn``: a connection for one (atomic) statement."""
    if db.is_sqlite:
        return db.engine.begin()
    engine = _ENGINES.get(db)
    if engine is None:  # the same pool; its connections are checked out in autocommit
        engine = _ENGINES[db] = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine.connect()
