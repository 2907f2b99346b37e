"""The domain events: one name and one pydantic model each — the contract between a producer and its consumers.

A producer emits a model into its outbox (``Outbox.emit(session, UserDeleted(...))``); a consumer declares one
handler per model (``services.common.events.Consumer``) and receives a validated instance. On the wire an event is
the envelope of ``services.common.events.Event`` whose ``type`` is the model's ``name`` and whose ``payload`` is the
model as JSON (timestamps written like every API timestamp, ``2026-01-20T03:15:42.120Z``). Who emits and who applies
each event: ``docs/events.md``.

Models ignore unknown fields, so a producer may add a field before every consumer knows it; removing or retyping
one is a new event name.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer, StrictBool

from services.common.clock import iso_ms

Timestamp = Annotated[AwareDatetime, PlainSerializer(iso_ms, return_type=str, when_used="json")]


class EventName(StrEnum):
    USER_CREATED = "user.created"
    USER_LOGGED_IN = "user.logged_in"
    USER_DELETED = "user.deleted"
    SCAN_REWARD_GRANTED = "scan.reward_granted"


class DomainEvent(BaseModel):
    """Base of every event model; ``name`` is the routing key and the envelope's ``type``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class UserCreated(DomainEvent):
    """auth → my: a new account (the profile starts from it)."""

    name = EventName.USER_CREATED

    user_id: uuid.UUID
    provider: str
    nickname: str | None = None
    email: str | None = None
    profile_image_url: str | None = None
    created_at: Timestamp


class UserLoggedIn(DomainEvent):
    """auth → my: a login (last login time and provider)."""

    name = EventName.USER_LOGGED_IN

    user_id: uuid.UUID
    provider: str | None = None
    logged_in_at: Timestamp


class UserDeleted(DomainEvent):
    """my → every service holding the user's data: erase it."""

    name = EventName.USER_DELETED

    user_id: uuid.UUID
    deleted_at: Timestamp


# Points of one eligible scan (docs/api.md, users → points): every eligible scan earns the scan reward, a scan that
# grants a character the user did not own earns the collection bonus on top.
SCAN_REWARD_POINTS = 10
CHARACTER_COLLECTED_POINTS = 50


def reward_points(received: bool) -> int:
    """What an eligible scan is worth in total (the ``points_awarded`` of its reward)."""
    return SCAN_REWARD_POINTS + (CHARACTER_COLLECTED_POINTS if received else 0)


class ScanRewardGranted(DomainEvent):
    """scan → my: the reward the scan pipeline decided for one eligible job, in the transaction that stored
    its result (ownership copy and ledger entries)."""

    name = EventName.SCAN_REWARD_GRANTED

    user_id: uuid.UUID
    job_id: uuid.UUID
    character_code: str
    character_name: str
    received: StrictBool
    points: int

    @property
    def collected_points(self) -> int:
        """The part of ``points`` that is the collection bonus (0 unless this scan granted the character)."""
        return CHARACTER_COLLECTED_POINTS if self.received else 0

    @property
    def scan_points(self) -> int:
        return self.points - self.collected_points


MODELS: dict[str, type[DomainEvent]] = {
    model.name: model for model in (UserCreated, UserLoggedIn, UserDeleted, ScanRewardGranted)
}
