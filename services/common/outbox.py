"""Transactional outbox: an event row written in the same transaction as the change that caused it.

Each service that emits events declares ``class Outbox(OutboxMixin, Base)`` in its own schema and
writes with ``Outbox.emit(session, SomeEvent(...))`` (the models are in ``domain_events.py``).
Relaying rows to the bus and consuming them is the event kernel's job (``events.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Self

from sqlalchemy import JSON, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

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
        return row
