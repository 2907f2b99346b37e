"""Rewards are decided by the scan pipeline now (tests/scan/test_reward.py): the character service has no
internal reward route any more, and ``user.deleted`` still erases the rows earlier releases stored."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from services.character import consumers
from services.character.models import Ownership, RewardDecision
from services.common.clock import utcnow
from services.common.config import CommonSettings
from services.common.domain_events import UserDeleted
from services.common.runtime import ServiceRuntime
from tests.character.conftest import INTERNAL
from tests.support.events import envelope


async def test_the_internal_reward_route_is_gone(character_client: httpx.AsyncClient) -> None:
    response = await character_client.post("/internal/v1/character/rewards", json={}, headers=INTERNAL)
    assert response.status_code == 404


async def test_user_deleted_erases_what_earlier_releases_stored(migrated: CommonSettings) -> None:
    user = uuid.uuid4()
    runtime = ServiceRuntime("character", "character", migrated)
    try:
        assert runtime.db is not None
        async with runtime.db.session() as session:
            session.add(Ownership(user_id=user, character_code="char-petty", job_id=uuid.uuid4()))
            session.add(RewardDecision(job_id=uuid.uuid4(), user_id=user, eligible=True, reward={"received": True}))
        (subscription,) = consumers.build(runtime)
        await subscription.handler(envelope(UserDeleted(user_id=user, deleted_at=utcnow()), "my"))
        async with runtime.db.session() as session:
            assert await session.scalar(select(func.count()).where(Ownership.user_id == user)) == 0
            assert await session.scalar(select(func.count()).where(RewardDecision.user_id == user)) == 0
    finally:
        await runtime.close()
