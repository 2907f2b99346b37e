"""Transactional outbox: an event row written in the same transaction as the change that caused it.

Each service that emits events declares ``class Outbox(OutboxMixin, Base)`` in its own schema and
writes with ``Outbox.emit(session, SomeEvent(...))`` (the models are in ``domain_events.py``).
Relaying rows to the bus and consuming them is the event kernel's job (``events.py``).

A transaction that emitted tells the relay when it commits, so the relay need not poll often: on
PostgreSQL with ``NOTIFY`` (delivered only if the transaction commits, to a relay in any process),
and in this process through ``on_outbox_commit`` (embedded mode runs the relay as a task beside the
writers).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self

from sqlalchemy import JSON, Index, String, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime
from services.common.domain_events import DomainEvent
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
