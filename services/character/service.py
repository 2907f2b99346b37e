"""Character rules: the catalog, and the reward decision for a completed scan (docs/api.md, scan: reward).

The catalog has one source, the shared reference data (``services.common.knowledge.characters()``),
read by this service, by my (owned characters) and by scan (the pending-reward fallback) alike; it
is not copied into this service's database.

The decision is made once per scan job and stored; the internal endpoint and the ``scan.completed``
consumer both call ``decide`` and so always agree. The stored decision, the ownership row and the
``scan.reward_granted`` outbox row are written in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.character.models import DeletedUser, Outbox, Ownership, RewardDecision
from services.common.clock import iso_ms, utcnow
from services.common.db import upsert
from services.common.domain_events import FinishedScan, ScanRewardGranted, reward_points
from services.common.errors import Conflict
from services.common.knowledge import character_for_middle, characters, nfc
from services.common.logging import get_logger

log = get_logger("eco2.character")

RECYCLABLE_MAJOR = "재활용폐기물"


@dataclass(frozen=True)
class ScanOutcome:
    user_id: uuid.UUID
    job_id: uuid.UUID
    major_category: str
    middle_category: str
    minor_category: str | None
    rule_found: bool
    insufficiencies: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, scan: FinishedScan) -> ScanOutcome:
        """From the internal reward call or the ``scan.completed`` event (the same fields, validated)."""
        return cls(
            user_id=scan.user_id,
            job_id=scan.job_id,
            major_category=scan.major_category,
            middle_category=scan.middle_category,
            minor_category=scan.minor_category or None,
            rule_found=scan.rule_found,
            insufficiencies=list(scan.insufficiencies),
        )

    @property
    def match_reason(self) -> str:
        minor = (self.minor_category or "").strip()
        middle = nfc(self.middle_category.strip())
        return f"{middle}>{nfc(minor)}" if minor else middle

    def qualifies(self) -> bool:
        """Eligibility apart from the character match: recyclable, rule found, nothing missing."""
        return (
            nfc(self.major_category.strip()) == RECYCLABLE_MAJOR
            and bool(self.middle_category.strip())
            and self.rule_found
            and not [item for item in self.insufficiencies if item.strip()]
        )


@dataclass(frozen=True)
class Decision:
    eligible: bool
    reward: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"eligible": self.eligible, "reward": self.reward}


NOT_ELIGIBLE = Decision(False, None)


async def decide(session: AsyncSession, outcome: ScanOutcome, *, rewards_enabled: bool = True) -> Decision:
    """Decide (or recall) the reward for ``outcome.job_id`` in the caller's transaction."""
    if await session.get(DeletedUser, outcome.user_id) is not None:
        return NOT_ELIGIBLE  # a scan finishing after its user was deleted grants nothing, stores nothing
    # Claim the job first: a concurrent decision for the same job waits on this row (PostgreSQL) or
    # the write lock (SQLite) and then finds it taken, so a job is decided exactly once.
    claim = upsert(session, RewardDecision).values(
        job_id=outcome.job_id, user_id=outcome.user_id, eligible=False, reward=None, decided_at=utcnow()
    )
    claimed = bool((await session.execute(claim.on_conflict_do_nothing())).rowcount)  # type: ignore[attr-defined]
    if not claimed:
        stored = (
            await session.execute(select(RewardDecision).where(RewardDecision.job_id == outcome.job_id))
        ).scalar_one()
        if stored.user_id != outcome.user_id:
            raise Conflict("job_id was already decided for another user", "JOB_USER_MISMATCH")
        return Decision(stored.eligible, stored.reward)

    if not (rewards_enabled and outcome.qualifies()):
        return NOT_ELIGIBLE
    character = character_for_middle(outcome.middle_category.strip())
    if character is None:
        return NOT_ELIGIBLE  # not one of the 12 middle categories; never fall back to the mascot
    grant = upsert(session, Ownership).values(
        user_id=outcome.user_id,
        character_code=character.code,
        status="owned",
        source="scan",
        job_id=outcome.job_id,
        acquired_at=utcnow(),
    )
    received = bool((await session.execute(grant.on_conflict_do_nothing())).rowcount)  # type: ignore[attr-defined]
    points = reward_points(received)
    reward = {
        "received": received,
        "already_owned": not received,
        "name": character.name,
        "dialog": character.dialog,
        "match_reason": outcome.match_reason,
        "type": character.type,
        "character_code": character.code,
        "points_awarded": points,
    }
    await session.execute(
        update(RewardDecision).where(RewardDecision.job_id == outcome.job_id).values(eligible=True, reward=reward)
    )
    Outbox.emit(
        session,
        ScanRewardGranted(
            user_id=outcome.user_id,
            job_id=outcome.job_id,
            character_code=character.code,
            character_name=character.name,
            received=received,
            points=points,
        ),
    )
    log.info("reward_decided", job_id=str(outcome.job_id), character=character.code, received=received)
    return Decision(True, reward)


async def erase_user(session: AsyncSession, user_id: uuid.UUID, deleted_at: datetime) -> None:
    await session.execute(delete(Ownership).where(Ownership.user_id == user_id))
    await session.execute(delete(RewardDecision).where(RewardDecision.user_id == user_id))
    await session.execute(
        upsert(session, DeletedUser).values(user_id=user_id, deleted_at=utcnow()).on_conflict_do_nothing()
    )
    log.info("user_erased", user_id=str(user_id), deleted_at=iso_ms(deleted_at))


def catalog(cdn_base_url: str | None) -> list[dict[str, Any]]:
    return [
        {
            "id": str(character.id),
            "code": character.code,
            "name": character.name,
            "type": character.type,
            "dialog": character.dialog,
            "match": character.match,
            "image_url": f"{cdn_base_url}/character/{character.cdn_code}.png" if cdn_base_url else None,
        }
        for character in characters()
    ]
