"""Character rules: the catalog, and erasing what earlier releases stored per user.

The catalog has one source, the shared reference data (``services.common.knowledge.characters()``),
read by this service, by my (owned characters) and by scan (the reward) alike; it is not copied into
this service's database.

The reward is no longer decided here: the scan pipeline decides it in its own finishing transaction
and emits ``scan.reward_granted`` (services/scan/reward.py). The ``ownerships`` and
``reward_decisions`` tables the previous release wrote are read by nothing now; they are kept (the
previous release still uses them, docs/migrations.md), erased per user on ``user.deleted``, and
dropped by a later release.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.character.models import DeletedUser, Ownership, RewardDecision
from services.common.clock import iso_ms, utcnow
from services.common.db import upsert
from services.common.knowledge import characters
from services.common.logging import get_logger

log = get_logger("eco2.character")


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
