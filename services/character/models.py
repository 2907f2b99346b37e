"""Tables of the character service (schema ``character``): ownership and reward decisions.

The catalog is reference data (``services.common.knowledge``), read from there by every service.
``CatalogEntry`` is the table the previous release still reads; this release no longer does, and a
later release drops it (the contract step of docs/migrations.md)."""

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


class CatalogEntry(Base):
    """No longer read (see the module docstring); kept until a later release drops the table."""

    __tablename__ = "catalog"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True)
    position: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(40), unique=True)
    match: Mapped[str | None] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(200))
    dialog: Mapped[str] = mapped_column(String(500))
    cdn_code: Mapped[str] = mapped_column(String(40))


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
