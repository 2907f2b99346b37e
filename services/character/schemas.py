"""Bodies of the character endpoints: the public catalog and the internal reward call."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from services.common.domain_events import FinishedScan


class CatalogCharacter(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    type: str
    dialog: str
    match: str | None
    image_url: str | None


class RewardRequest(FinishedScan):
    """A finished scan, as the scan service reports it (the fields of ``scan.completed``)."""


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
