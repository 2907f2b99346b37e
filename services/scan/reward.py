"""The scan reward (docs/api.md, scan: reward), decided in the worker's own finishing transaction.

Eligibility and the character follow from the stored stage outputs alone. Ownership is
``claimed_characters`` (user, character): the finishing transaction inserts the row with
``ON CONFLICT DO NOTHING``, so of two jobs finishing at once for the same character exactly one
inserts it (``received``) and the other waits on the key and then finds it (``already_owned``). The
insert, the job's compare-and-set finish and the ``scan.reward_granted`` outbox row commit together:
a job that lost the race to the sweeper, or whose user was erased, rolls its claim back and grants
nothing; a redelivery of a finished job re-reads the stored result and never decides again.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.common.ai import Classification
from services.common.clock import utcnow
from services.common.db import upsert
from services.common.domain_events import DomainEvent, ScanRewardGranted, reward_points
from services.common.knowledge import RECYCLABLE, Character, KnowledgeBase, character_for_middle
from services.common.tracing import OUTBOX_TRACE_KEY, inject
from services.scan.models import ClaimedCharacter, Outbox

OUTBOX_SCHEMA = str(Outbox.__table__.schema)
# Built once (see pipeline.py): the row's values come as the execution's parameters.
EMIT = insert(Outbox)
_CLAIMS: dict[str, Any] = {}


def eligible_character(kb: KnowledgeBase, checkpoint: dict[str, Any], *, enabled: bool = True) -> Character | None:
    """The character an eligible scan earns, ``None`` when not eligible: recyclable, one of the twelve
    middles, a rule document found, nothing missing (never the mascot as a fallback)."""
    if not enabled:
        return None
    c = Classification.from_dict(checkpoint["vision"])
    missing = [item for item in checkpoint["answer"]["insufficiencies"] if str(item).strip()]
    if c.major != RECYCLABLE or c.middle not in kb.middles or checkpoint["rule"]["key"] is None or missing:
        return None
    return character_for_middle(c.middle)


def reward_object(character: Character, c: Classification, received: bool) -> dict[str, Any]:
    """Exactly the seven fields of the contract's reward object."""
    return {
        "name": character.name,
        "dialog": character.dialog,
        "match_reason": f"{c.middle}>{c.minor}" if c.minor else c.middle,
        "type": character.type,
        "received": received,
        "already_owned": not received,
        "points_awarded": reward_points(received),
    }


async def claim(conn: AsyncConnection, user_id: uuid.UUID, character_code: str, job_id: uuid.UUID) -> bool:
    """Claim the character for the user inside the caller's transaction; ``True`` iff this job got it."""
    statement = _CLAIMS.get(conn.dialect.name)
    if statement is None:
        statement = _CLAIMS[conn.dialect.name] = upsert(conn, ClaimedCharacter).on_conflict_do_nothing()
    row = {"user_id": user_id, "character_code": character_code, "job_id": job_id, "claimed_at": utcnow()}
    return bool((await conn.execute(statement, row)).rowcount)


def granted(user_id: uuid.UUID, job_id: uuid.UUID, character: Character, received: bool) -> ScanRewardGranted:
    return ScanRewardGranted(
        user_id=user_id,
        job_id=job_id,
        character_code=character.code,
        character_name=character.name,
        received=received,
        points=reward_points(received),
    )


async def emit(conn: AsyncConnection, event: DomainEvent) -> None:
    """``Outbox.emit`` for a Core transaction (no ORM session on the worker's path): the same row —
    type, payload as JSON, the writer's trace context for the relay to move to the message headers."""
    payload = event.payload()
    trace = inject()
    if trace:
        payload[OUTBOX_TRACE_KEY] = dict(trace)
    row = {"id": uuid.uuid4(), "type": str(event.name), "payload": payload, "occurred_at": utcnow()}
    await conn.execute(EMIT, row)


async def erase_claims(session: AsyncSession, user_id: uuid.UUID) -> None:
    """``user.deleted``: the user's collection goes with their jobs."""
    await session.execute(delete(ClaimedCharacter).where(ClaimedCharacter.user_id == user_id))
