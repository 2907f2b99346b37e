"""The reward decision through the internal endpoint (the scan service's synchronous call)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.character.models import Outbox, Ownership, RewardDecision
from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from tests.character.conftest import INTERNAL

URL = "/internal/v1/character/rewards"


def outcome(user_id: uuid.UUID, job_id: uuid.UUID | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": str(user_id),
        "job_id": str(job_id or uuid.uuid4()),
        "major_category": "재활용폐기물",
        "middle_category": "무색페트병",
        "minor_category": "음료PET병",
        "rule_found": True,
        "insufficiencies": [],
    }
    return body | changes


async def rows(common: CommonSettings, user_id: uuid.UUID) -> tuple[int, int, int]:
    """(ownership rows, decisions, reward events) for the user."""
    db = Database(database_url_for("character", common.database_url, common.data_dir), "character")
    try:
        async with db.session() as session:
            owned = await session.scalar(select(func.count()).where(Ownership.user_id == user_id))
            decided = await session.scalar(select(func.count()).where(RewardDecision.user_id == user_id))
            events = (await session.execute(select(Outbox.payload))).scalars().all()
        return int(owned or 0), int(decided or 0), sum(1 for e in events if e["user_id"] == str(user_id))
    finally:
        await db.dispose()


async def test_internal_token_is_required(character_client: httpx.AsyncClient) -> None:
    body = outcome(uuid.uuid4())
    for headers in ({}, {"X-Internal-Token": "wrong"}, {"X-Internal-Token": ""}):
        response = await character_client.post(URL, json=body, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"detail": "internal token missing or wrong", "code": "INTERNAL_AUTH_FAILED"}


async def test_first_collection_then_already_owned(
    character_client: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    user = uuid.uuid4()
    first = await character_client.post(URL, json=outcome(user), headers=INTERNAL)
    assert first.status_code == 200
    assert first.json() == {
        "eligible": True,
        "reward": {
            "received": True,
            "already_owned": False,
            "name": "페티",
            "dialog": first.json()["reward"]["dialog"],
            "match_reason": "무색페트병>음료PET병",
            "type": "먹는샘물 페트병, 음료 페트병",
            "character_code": "char-petty",
            "points_awarded": 60,
        },
    }
    second = (await character_client.post(URL, json=outcome(user), headers=INTERNAL)).json()
    assert second["reward"]["received"] is False
    assert second["reward"]["already_owned"] is True
    assert second["reward"]["points_awarded"] == 10
    assert await rows(migrated, user) == (1, 2, 2)


@pytest.mark.parametrize(
    ("changes", "eligible"),
    [
        ({"major_category": "일반종량제폐기물", "middle_category": "일반종량제폐기물"}, False),
        ({"rule_found": False}, False),
        ({"insufficiencies": ["라벨을 떼어 주세요"]}, False),
        ({"insufficiencies": ["", "   "]}, True),  # blank entries are not insufficiencies
        ({"middle_category": "유색페트병"}, False),  # not one of the 12
        ({"middle_category": "대표 캐릭터"}, False),  # the mascot's label matches no waste
        ({"middle_category": ""}, False),
    ],
)
async def test_eligibility(character_client: httpx.AsyncClient, changes: dict[str, Any], eligible: bool) -> None:
    response = await character_client.post(URL, json=outcome(uuid.uuid4(), **changes), headers=INTERNAL)
    assert response.status_code == 200
    body = response.json()
    assert body["eligible"] is eligible
    assert (body["reward"] is None) is (not eligible)


async def test_match_reason_without_minor(character_client: httpx.AsyncClient) -> None:
    body = outcome(uuid.uuid4(), middle_category="종이", minor_category="")
    reward = (await character_client.post(URL, json=body, headers=INTERNAL)).json()["reward"]
    assert reward["match_reason"] == "종이"
    assert reward["name"] == "페이피"


async def test_bad_input_is_422_never_500(character_client: httpx.AsyncClient) -> None:
    for body in ({}, {"user_id": "x"}, [1], {**outcome(uuid.uuid4()), "rule_found": "maybe"}):
        response = await character_client.post(URL, json=body, headers=INTERNAL)
        assert response.status_code == 422


async def test_a_job_is_decided_once_whatever_is_sent_again(
    character_client: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    user, job = uuid.uuid4(), uuid.uuid4()
    calls = [character_client.post(URL, json=outcome(user, job), headers=INTERNAL) for _ in range(20)]
    answers = [r.json() for r in await asyncio.gather(*calls)]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["reward"]["received"] is True
    for _ in range(80):  # 100 in all: the stored decision comes back, nothing is added
        again = await character_client.post(URL, json=outcome(user, job, rule_found=False), headers=INTERNAL)
        assert again.json() == answers[0]
    assert await rows(migrated, user) == (1, 1, 1)
    stranger = await character_client.post(URL, json=outcome(uuid.uuid4(), job), headers=INTERNAL)
    assert (stranger.status_code, stranger.json()["code"]) == (409, "JOB_USER_MISMATCH")


async def test_an_ineligible_decision_is_stored_too(character_client: httpx.AsyncClient) -> None:
    user, job = uuid.uuid4(), uuid.uuid4()
    first = await character_client.post(URL, json=outcome(user, job, rule_found=False), headers=INTERNAL)
    assert first.json() == {"eligible": False, "reward": None}
    retry = await character_client.post(URL, json=outcome(user, job), headers=INTERNAL)
    assert retry.json() == {"eligible": False, "reward": None}
