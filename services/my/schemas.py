"""Request and response bodies of the my service's endpoints (docs/api.md, users; flat objects, no envelope)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.schemas import Text, TrimmedText, UtcDateTime


class ProfileOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    nickname: str
    phone_number: str | None
    provider: str
    profile_image_url: str | None
    last_login_at: UtcDateTime | None
    created_at: UtcDateTime


class ProfileUpdate(BaseModel):
    """Fields present in the body are changed; absent ones are left alone."""

    model_config = ConfigDict(extra="ignore")

    # Optional but never null (null is a 422, docs/api.md, users): absent means "leave it unchanged".
    nickname: TrimmedText = Field(default=None, min_length=1, max_length=30)  # type: ignore[assignment]
    phone_number: Text | None = None

    def changes(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class OwnedCharacterOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    type: str
    dialog: str
    acquired_at: UtcDateTime
    source: Literal["default", "scan"]


class OwnedCharacterRef(BaseModel):
    """An owned character as the internal route lists it (code and name are enough for the assistant)."""

    code: str
    name: str


class OwnershipOut(BaseModel):
    character_name: str
    owned: bool


class PointEntryOut(BaseModel):
    id: uuid.UUID
    delta: int
    reason: Literal["scan_reward", "character_collected"]
    job_id: uuid.UUID
    character_name: str | None
    created_at: UtcDateTime


class PointsOut(BaseModel):
    balance: int
    history: list[PointEntryOut]
    next_cursor: str | None
