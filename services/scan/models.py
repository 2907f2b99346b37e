"""Tables of the scan schema: jobs (state, stage checkpoints, result), claimed characters, idempotency keys,
outbox, inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata
from services.common.events import InboxMixin
from services.common.outbox import OutboxMixin

SCHEMA = "scan"
TERMINAL = ("completed", "failed")
OPEN = ("queued", "processing")  # a job still running: only these may be written or finished


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Job(Base):
    """One scan. ``checkpoint`` holds each finished stage's output, so a redelivered job resumes
    after the last stored stage instead of calling the models again."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user", "user_id", "created_at"),
        Index("ix_jobs_open", "status", "deadline_at"),  # the sweeper's scan of unfinished jobs
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    image_url: Mapped[str] = mapped_column(String(2048))
    image_key: Mapped[str] = mapped_column(String(128))
    image_type: Mapped[str] = mapped_column(String(64))
    user_input: Mapped[str] = mapped_column(String(500), default="")
    model: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|processing|completed|failed
    stage: Mapped[str] = mapped_column(String(16), default="queued")  # last completed stage
    progress: Mapped[int] = mapped_column(default=0)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    reward_character: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime)
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class ClaimedCharacter(Base):
    """The characters a user collected by scanning, one row per (user, character): the job whose
    finishing transaction inserted the row granted it (``received``), every later job finds it
    (``already_owned``). Not purged with jobs — ownership outlives a job's 26 h retention; erased on
    ``user.deleted``."""

    __tablename__ = "claimed_characters"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    character_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column()
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class IdempotencyKey(Base):
    """``X-Idempotency-Key`` per user, remembered 24 h: same body → same job, other body → 409."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Outbox(OutboxMixin, Base): ...


class Inbox(InboxMixin, Base): ...
