"""Transactional outbox: an event row written in the same transaction as the change that caused it.

Each service that emits events declares ``class Outbox(OutboxMixin, Base)`` in its own schema and
writes with ``Outbox.emit(session, SomeEvent(...))`` (the models are in ``domain_events.py``).
Relaying rows to the bus and consuming them is the event kernel's job (``events.py``).

A transaction that emitted tells the relay when it commits, so the relay need not poll often: on
PostgreSQL with ``NOTIFY`` (delivered only if the transaction commits, to a relay in any process),
and in this process through ``on_outbox_commit`` (embedded mode runs the relay as a task beside the
writers). ORM sessions do both by themselves (the listeners below). Core writers (the scan worker's
finishing transaction) call ``announce`` after their commit instead: the ``NOTIFY`` is then coalesced
per process — one autocommit statement per ``OUTBOX_ANNOUNCE_INTERVAL`` (a setting) at most, however many commits — so a
busy writer does not wake the relay once per row (each wake-up is a relay pass and a consumer
transaction of one event; measured: +3 ms of CPU per scan when every finish notified).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self

from sqlalchemy import JSON, Index, String, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from services.common.clock import utcnow
from services.common.config import get_common_settings
from services.common.db import Database, UtcDateTime
from services.common.domain_events import DomainEvent
from services.common.logging import get_logger
from services.common.tracing import OUTBOX_TRACE_KEY, inject


class OutboxMixin:
    """Columns of an outbox row; a service declares ``class Outbox(OutboxMixin, Base)``."""

    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805 - SQLAlchemy passes the class
        # The relay scans unpublished rows in order; this keeps that scan off the published history.
        return (Index("ix_outbox_unpublished", "published_at", "occurred_at"),)

    @classmethod
    def emit(cls, session: AsyncSession, event: DomainEvent) -> Self:
        """Queue ``event`` in the caller's transaction; it is published only if that transaction commits."""
        row = cls()
        row.id = uuid.uuid4()
        row.type = str(event.name)
        row.payload = event.payload()
        trace = inject()
        if trace:  # the writer's trace context, moved to the message's headers by the relay
            row.payload[OUTBOX_TRACE_KEY] = dict(trace)
        row.occurred_at = utcnow()
        session.add(row)
        session.info.setdefault(_EMITTED, set()).add(cls.__table__.schema or "")  # type: ignore[attr-defined]
        return row


# PostgreSQL channel the relay listens on; the payload is the outbox's schema (the producing service).
OUTBOX_CHANNEL = "eco2_outbox"
_EMITTED = "eco2_outbox_emitted"
_commit_listeners: list[Callable[[str], None]] = []


def on_outbox_commit(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(schema)`` after each commit in this process that added outbox rows; returns
    the function that removes it."""
    _commit_listeners.append(listener)
    return lambda: _commit_listeners.remove(listener)


@event.listens_for(Session, "before_commit")
def _notify_relay(session: Session) -> None:
    schemas = session.info.get(_EMITTED)
    if schemas and session.get_bind().dialect.name == "postgresql":
        # One round trip in the emitting transaction: PostgreSQL delivers it at commit (never on
        # rollback) and folds identical notifications of one transaction into one. The schemas are
        # the models' own names, not input, so the statement is a constant per outbox.
        for schema in schemas:
            session.connection().exec_driver_sql(_notify_sql(schema))


@functools.cache
def _notify_sql(schema: str) -> str:
    if not schema.isidentifier():
        raise ValueError(f"outbox schema {schema!r} is not an identifier")
    return f"NOTIFY {OUTBOX_CHANNEL}, '{schema}'"


@event.listens_for(Session, "after_commit")
def _wake_local_relay(session: Session) -> None:
    schemas = session.info.pop(_EMITTED, None)
    if schemas:
        for listener in list(_commit_listeners):
            for schema in schemas:
                listener(schema)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_EMITTED, None)


# ------------------------------------------------------------------------- Core writers: announce

# At most one ``NOTIFY`` per database per ``outbox_announce_interval`` seconds (``CommonSettings``) from
# a process's Core writers: every committed row is announced within it, and the relay's passes (which
# wait ``min_gap`` = 0.1 s after publishing anyway) gather the commits of the interval.
log = get_logger("eco2.outbox")


def announce(db: Database, schema: str) -> None:
    """Tell the relay that a committed Core transaction wrote rows to ``schema``'s outbox.

    Call it after the commit (never for a rollback). In-process relays are woken at once; on
    PostgreSQL one coalesced ``NOTIFY`` follows within ``OUTBOX_ANNOUNCE_INTERVAL`` (a background task of the
    running loop). A lost notice (process exit, store outage) only costs latency: the relay's poll
    finds the row."""
    for listener in list(_commit_listeners):
        listener(schema)
    if not db.is_sqlite:
        announcer = _announcers.get(db)
        if announcer is None:
            announcer = _announcers[db] = _Announcer()
        announcer.mark(db, schema)


class _Announcer:
    """The coalescing ``NOTIFY`` of one database: schemas marked since the last notice, one task."""

    # No reference to the database here: it is the (weak) key of ``_announcers``.
    def __init__(self) -> None:
        self.dirty: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.last = float("-inf")  # loop time of the last notice
        self.interval = get_common_settings().outbox_announce_interval

    def mark(self, db: Database, schema: str) -> None:
        self.dirty.add(schema)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run(db), name="eco2-outbox-announce")

    async def _run(self, db: Database) -> None:
        loop = asyncio.get_running_loop()
        while self.dirty:  # no await between this test and the task ending: a new mark starts a new task
            wait = self.last + self.interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # commits of the interval join this notice
            schemas, self.dirty = self.dirty, set()
            self.last = loop.time()
            try:
                async with db.autocommit() as conn:
                    for schema in sorted(schemas):
                        await conn.exec_driver_sql(_notify_sql(schema))
            except Exception as exc:  # the relay's poll picks the rows up; no writer fails for a notice
                log.warning("outbox_notify_failed", schemas=sorted(schemas), error=repr(exc))


_announcers: weakref.WeakKeyDictionary[Database, _Announcer] = weakref.WeakKeyDictionary()
