"""Tables of the chat schema: chats, their messages, the jobs that answer them, and the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata
from services.common.events import InboxMixin

SCHEMA = "chat"
OPEN = ("queued", "processing")
TERMINAL = ("completed", "failed")


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Chat(Base):
    """A conversation. ``activity_at`` = coalesce(last_message_at, created_at), stored so that the
    list (most recent activity first, docs/api.md chat: conversation rules) is one keyset index range."""

    __tablename__ = "chats"
    __table_args__ = (Index("ix_chats_user_activity", "user_id", "activity_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    title: Mapped[str | None] = mapped_column(String(100), default=None)
    preview: Mapped[str | None] = mapped_column(String(100), default=None)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    activity_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Soft delete: hidden at once, purged by the sweeper later (a running job still finishes).
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Message(Base):
    """A stored message. ``created_at`` is strictly increasing within a chat (at least 1 ms apart),
    so history pages are ordered by time alone and an answer is always later than its question."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_chat", "chat_id", "created_at", "id"),
        Index("ix_messages_user", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    chat_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    role: Mapped[str] = mapped_column(String(16))  # user|assistant
    content: Mapped[str] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    intent: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Job(Base):
    """One answer to one user message. Jobs of a chat run one at a time in ``created_at`` order; a
    running job holds a lease (``lease_owner`` until ``lease_until``) that its worker renews."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_chat", "chat_id", "created_at"),
        Index("ix_jobs_open", "status", "deadline_at"),
        Index("ix_jobs_user", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    chat_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    user_message_id: Mapped[uuid.UUID] = mapped_column()
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    # The user's position: sent with the message, or answered to ``needs_input``.
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|processing|completed|failed
    # While set and in the future, the job waits for ``POST /chat/{job_id}/input``.
    input_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    input_reply: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The data of the ``done`` event (result + message), stored before ``done`` is emitted.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    assistant_message_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime)
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Inbox(InboxMixin, Base): ...
