"""Request and response bodies of the my service's endpoints (docs/api.md, users; flat objects, no envelope)."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from services.common.schemas import UtcDateTime


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

    nickname: str | None = None
    phone_number: str | None = None

    @field_validator("nickname")
    @classmethod
    def _nickname(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("nickname cannot be null; omit it to leave it unchanged")
        value = value.strip()
        if not 1 <= len(value) <= 30:
            raise ValueError("nickname must be 1-30 characters after trimming")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("nickname must not contain control characters")
        return value

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
