"""Async SQLAlchemy 2.0: one engine per service, one session per request.

Real adapter: PostgreSQL via asyncpg, every service in its own schema. Embedded adapter: one SQLite
file per service via aiosqlite; models keep their ``schema=`` and the schema is translated away
(``schema_translate_map``), so the same models and migrations serve both.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event, exc, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from services.common.metrics import track_pool

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """Metadata for a service's declarative base: its own schema, predictable constraint names."""
    return MetaData(schema=schema, naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upsert(target: AsyncSession | AsyncConnection, model: Any) -> Any:
    """``INSERT`` for the dialect of a session or connection, with ``on_conflict_do_nothing``/``do_update``
    available (both backends spell upserts the same way; the generic ``insert`` has neither)."""
    dialect = target.dialect if isinstance(target, AsyncConnection) else target.get_bind().dialect
    return _insert_for(dialect.name)(model)


def _insert_for(dialect_name: str) -> Any:
    return pg_insert if dialect_name == "postgresql" else sqlite_insert


@functools.cache
def insert_ignoring(dialect_name: str, model: Any, index_elements: tuple[str, ...] | None = None) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``model``, built once per dialect: the row comes as the
    execution's parameters. For per-event writes, where building the statement (``values`` coercions,
    its cache key) costs more CPU than the round trip."""
    conflict = list(index_elements) if index_elements else None
    return _insert_for(dialect_name)(model).on_conflict_do_nothing(index_elements=conflict)


def database_url_for(service: str, database_url: str | None, data_dir: Path) -> str:
    if database_url:
        return database_url
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{(data_dir / f'{service}.db').as_posix()}"


# Connections a process keeps, and at most holds, per database. All of them stay pooled once opened:
# no overflow, whose connections are closed on check-in whenever the pool is full. Under a sustained
# load that overflow turned into several new PostgreSQL backends a second (a fork, the login, cold
# catalog caches, statements prepared again), each on the hot path of the request that opened it
# (docs/benchmarks.md, 2026-12-03 night). 20 is what a pool held at most before (10 + 10 overflow).
POOL_SIZE = 20


class Database:
    def __init__(self, url: str, schema: str, *, echo: bool = False, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_recycle=1800)
        engine = create_async_engine(url, **kwargs)
        if not self.is_sqlite:
            _ping_when_idle(engine)
        if self.is_sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            engine = engine.execution_options(schema_translate_map={schema: None})
        self.engine: AsyncEngine = engine
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        track_pool(self)  # eco2_db_pool_connections, read at scrape time

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commit when the block ends normally, roll back on any error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for single statements without a transaction: on PostgreSQL one round trip
        per statement instead of ``BEGIN`` + statement + ``COMMIT`` (and no ORM unit of work). SQLite
        (embedded) commits after the block instead: its driver opens transactions by itself."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                yield conn
                await conn.commit()
            else:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """PostgreSQL only: the pooled connection's own asyncpg connection, for a hot path's plain
        statements (asyncpg prepares and caches each per connection). No transaction is open on it,
        so every statement commits by itself, as on ``autocommit``; SQLAlchemy's per-statement work
        (cache lookup, parameter and result processing) is skipped — ≈ 0.1 ms of CPU per statement
        (docs/benchmarks.md). The caller passes driver-ready values (JSON as text) and reads asyncpg
        records. A connection that failed or was closed is dropped from the pool."""
        assert not self.is_sqlite, "asyncpg only"
        async with self.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            try:
                yield driver
            except Exception as exc:
                from services.common.errors import dependency_unavailable

                if driver.is_closed() or dependency_unavailable(exc):
                    await conn.invalidate()
                raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A Core transaction: committed when the block ends normally, rolled back on any error."""
        async with self.engine.begin() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class DriverStatement:
    """A Core statement compiled once for ``Database.driver``: its asyncpg SQL text and, per ``$n``,
    the parameter's name, its compile-time value (literals) and SQLAlchemy's own bind processing for
    its type (JSON → text with the dialect's serializer, UTC datetimes) — what ``execute`` does per
    call, without the cache lookup, the execution context and the result objects. Expanding ``IN``
    lists are rendered only at execution, so they are refused: write ``in_([literal(v), …])``."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string or compiled.positiontup is None:
            raise ValueError("a driver statement needs positional parameters and no expanding IN lists")
        self.sql = compiled.string
        self._params = [
            (name, compiled.params.get(name), compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup
        ]

    def args(self, values: dict[str, Any]) -> list[Any]:
        """The positional arguments for ``values`` (by parameter name; literals need none)."""
        args = []
        for name, literal, process in self._params:
            value = values.get(name, literal)
            args.append(process(value) if process is not None else value)
        return args


# A pooled connection unused for this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling for connections that sat idle, not for busy ones.

    ``pool_pre_ping`` costs a ``SELECT 1`` round trip on *every* checkout — ≈ 10 % of a scan worker's
    CPU (docs/benchmarks.md). What it protects against is a connection that died while unused (server
    restarted, idle connection cut by a proxy or a failover): so only a connection idle for a few
    seconds is pinged. A busy pool whose server restarts sees the error on first use; SQLAlchemy then
    recognises the disconnect and invalidates the whole pool, the request answers 503 / the job retries
    in place (``jobs.run_through_outages``) — exactly what happens to the requests in flight anyway."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or used moments ago
        try:
            engine.sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and checks out another (documented pool contract).
            raise exc.DisconnectionError from error


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers proceed during a write; busy_timeout waits instead of failing with "locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
