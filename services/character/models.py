"""Tables of the character service (schema ``character``): ownership and reward decisions.

The catalog itself is reference data (``services.common.knowledge``), not a table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata
from services.common.events import DeletedUserMixin, InboxMixin
from services.common.outbox import OutboxMixin

SCHEMA = "character"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Ownership(Base):
    """Characters a user collected by scanning, once per (user, character)."""

    __tablename__ = "ownerships"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    character_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="owned")  # only "owned" today
    source: Mapped[str] = mapped_column(String(16), default="scan")
    job_id: Mapped[uuid.UUID | None] = mapped_column()  # the scan that granted it
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RewardDecision(Base):
    """The reward decided for one scan job; every later call or event for the job returns this."""

    __tablename__ = "reward_decisions"

    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    eligible: Mapped[bool] = mapped_column(default=False)
    reward: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeletedUser(DeletedUserMixin, Base): ...


class Outbox(OutboxMixin, Base): ...


class Inbox(InboxMixin, Base): ...
