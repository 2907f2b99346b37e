"""Transactional outbox: an event row written in the same transaction as the change that caused it.

Each service that emits events gets its own ``outbox`` table in its own schema (``outbox_table``).
Relaying rows to the bus and consuming them is the event kernel's job.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime


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


def add_event(session: AsyncSession, model: type[DeclarativeBase], event_type: str, payload: dict[str, Any]) -> Any:
    """Queue ``event_type`` in the caller's transaction; it is published only if that transaction commits."""
    row = model(id=uuid.uuid4(), type=event_type, payload=payload, occurred_at=utcnow())
    session.add(row)
    return row
