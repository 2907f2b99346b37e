"""Tables of the my service (schema ``my``): profiles, owned characters, the points ledger.

Rows are keyed by the user id the auth service issued; this service never reads auth's tables and
learns about accounts and logins from events only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata
from services.common.events import DeletedUserMixin, InboxMixin
from services.common.outbox import OutboxMixin

SCHEMA = "my"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Profile(Base):
    __tablename__ = "profiles"
    # Phone numbers are unique across users (docs/api.md, users); NULLs never collide in a unique index.
    __table_args__ = (Index("uq_profiles_phone_number", "phone_number", unique=True),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    nickname: Mapped[str] = mapped_column(String(30))
    # True once the user chose a nickname (PATCH): account events then never overwrite it.
    nickname_customised: Mapped[bool] = mapped_column(default=False)
    # True once ``user.created`` was applied; until then the row was made by an early request.
    account_synced: Mapped[bool] = mapped_column(default=False)
    phone_number: Mapped[str | None] = mapped_column(String(13))
    email: Mapped[str | None] = mapped_column(String(320))
    profile_image_url: Mapped[str | None] = mapped_column(String(2048))
    last_login_provider: Mapped[str | None] = mapped_column(String(16))
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OwnedCharacter(Base):
    """This service's copy of a user's collection (the scan pipeline decides grants)."""

    __tablename__ = "owned_characters"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    character_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # "default" (이코) or "scan"
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PointEntry(Base):
    __tablename__ = "point_ledger"
    __table_args__ = (
        # One entry per scan job and reason: a redelivered or replayed reward can never count twice.
        UniqueConstraint("user_id", "job_id", "reason", name="uq_point_ledger_user_job_reason"),
        Index("ix_point_ledger_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    job_id: Mapped[uuid.UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(String(32))  # "scan_reward" | "character_collected"
    delta: Mapped[int] = mapped_column()
    character_name: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeletedUser(DeletedUserMixin, Base): ...


class Outbox(OutboxMixin, Base): ...


class Inbox(InboxMixin, Base): ...
