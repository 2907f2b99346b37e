"""Bodies of the character endpoints: the public catalog and the internal reward call."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from services.common.schemas import MultilineText, Text


class CatalogCharacter(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    type: str
    dialog: str
    match: str | None
    image_url: str | None


class RewardRequest(BaseModel):
    """A finished scan, as the scan service reports it (same fields as ``scan.completed``)."""

    model_config = ConfigDict(extra="ignore")

    user_id: uuid.UUID
    job_id: uuid.UUID
    major_category: Text
    middle_category: Text
    minor_category: Text | None = None
    rule_found: bool
    insufficiencies: list[MultilineText] = []


class Reward(BaseModel):
    received: bool
    already_owned: bool
    name: str
    dialog: str
    match_reason: str
    type: str
    character_code: str
    points_awarded: int


class RewardResponse(BaseModel):
    eligible: bool
    reward: Reward | None
