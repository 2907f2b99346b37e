"""Tables of the image schema: every issued upload key, and the consumer inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata
from services.common.events import InboxMixin

SCHEMA = "image"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Upload(Base):
    """One issued key: who asked for it, what type was signed, and where verification stands."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_user", "user_id"),
        # The sweeper looks for old pending rows only.
        Index("ix_uploads_status_created", "status", "created_at"),
    )

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column()
    channel: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | verified | rejected
    rejection_code: Mapped[str | None] = mapped_column(String(32), default=None)
    size_bytes: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Inbox(InboxMixin, Base): ...
