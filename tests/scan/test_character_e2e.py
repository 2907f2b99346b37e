"""The reward stage against the real character service: the internal endpoint decides once per job,
and when it is unreachable the scan still completes and ``scan.completed`` lets character decide later,
exactly once."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from services.character import consumers as character_consumers
from services.character.models import Outbox as CharacterOutbox
from services.character.models import Ownership, RewardDecision
from services.common.events import Event
from services.common.runtime import ServiceRuntime
from services.scan.models import Outbox
from tests.scan.conftest import StackFactory


async def character_rows(stack_common, job_id: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    runtime = ServiceRuntime("character", "character", stack_common)
    try:
        assert runtime.db is not None
        async with runtime.db.session() as session:
            decisions = await session.scalar(
                select(func.count()).select_from(RewardDecision).where(RewardDecision.job_id == uuid.UUID(job_id))
            )
            granted = await session.scalar(
                select(func.count()).select_from(CharacterOutbox).where(CharacterOutbox.type == "scan.reward_granted")
            )
    finally:
        await runtime.close()
    return int(decisions or 0), int(granted or 0)


async def test_reward_from_the_character_service(make_stack: StackFactory) -> None:
    stack = await make_stack(real_character=True)
    first = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
    assert first["reward"] == {
        "name": "페티",
        "dialog": first["reward"]["dialog"],
        "match_reason": "무색페트병>생수병",
        "type": first["reward"]["type"],
        "received": True,
        "already_owned": False,
        "points_awarded": 60,
    }
    second = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
    assert (second["reward"]["received"], second["reward"]["already_owned"], second["reward"]["points_awarded"]) == (
        False,
        True,
        10,
    )
    decisions, _ = await character_rows(stack.common, first["job_id"])
    assert decisions == 1
    runtime = ServiceRuntime("character", "character", stack.common)
    try:
        assert runtime.db is not None
        async with runtime.db.session() as session:
            owned = await session.get(Ownership, (stack.user_id, "char-petty"))
        assert owned is not None
    finally:
        await runtime.close()


async def test_unreachable_character_grants_later_exactly_once(make_stack: StackFactory) -> None:
    stack = await make_stack(reward_timeout_seconds=0.3)  # the fake, switched to "down"
    stack.character.down = True
    job_id = (await stack.submit("라벨 뗀 생수병")).json()["job_id"]
    result = await stack.result(job_id)
    assert result["status"] == "completed"
    assert result["reward"]["name"] == "페티"  # shown now, granted later
    async with stack.service.db.session() as session:
        rows = (await session.execute(select(Outbox).where(Outbox.type == "scan.completed"))).scalars().all()
    row = next(r for r in rows if r.payload["job_id"] == job_id)
    decisions, _ = await character_rows(stack.common, job_id)
    assert decisions == 0

    # The relay delivers scan.completed (at least once): character decides by job id, once.
    runtime = ServiceRuntime("character", "character", stack.common)
    try:
        (subscription,) = character_consumers.build(runtime)
        _, granted_before = await character_rows(stack.common, job_id)
        for _ in range(2):
            await subscription.handler(Event(str(row.id), row.type, row.payload, "2026-01-01T00:00:00.000Z", "scan"))
        # a redelivery under a new envelope id is still the same job
        await subscription.handler(Event(str(uuid.uuid4()), row.type, row.payload, "2026-01-01T00:00:00.000Z", "scan"))
    finally:
        await runtime.close()
    decisions, granted_after = await character_rows(stack.common, job_id)
    assert decisions == 1
    assert granted_after == granted_before + 1
