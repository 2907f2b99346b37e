"""``/me/characters``, ``/me/characters/{name}/ownership`` and ``/me/points``."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import httpx
from sqlalchemy import delete

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.events import Event, new_event_id
from services.common.knowledge import characters, mascot
from services.common.runtime import ServiceRuntime
from services.my.consumers import build
from services.my.models import OwnedCharacter
from tests.my.conftest import Deliver, User


def reward(user: User, code: str, name: str, received: bool, job_id: uuid.UUID | None = None) -> dict[str, object]:
    return {
        "user_id": str(user.id),
        "job_id": str(job_id or uuid.uuid4()),
        "character_code": code,
        "character_name": name,
        "received": received,
        "points": 60 if received else 10,
    }


async def test_a_new_user_owns_exactly_the_mascot(my_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    user = User(migrated)
    # Concurrent first reads: the mascot is granted once, and every answer lists it.
    responses = await asyncio.gather(
        *(my_client.get("/api/v1/users/me/characters", headers=user.headers) for _ in range(12))
    )
    for response in responses:
        assert response.status_code == 200
        [eco] = response.json()
        assert eco["name"] == "이코"
        assert eco["code"] == "char-eco"
        assert eco["source"] == "default"
        assert eco["id"] == str(mascot().id)
        assert set(eco) == {"id", "code", "name", "type", "dialog", "acquired_at", "source"}
        assert eco["type"] == mascot().type
        assert eco["dialog"] == mascot().dialog


async def test_a_missing_mascot_is_granted_during_the_read(
    my_client: httpx.AsyncClient, new_user: User, migrated: CommonSettings, deliver: Deliver
) -> None:
    await deliver("scan.reward_granted", reward(new_user, "char-paepy", "페이피", True))
    await my_client.get("/api/v1/users/me", headers=new_user.headers)
    db = Database(database_url_for("my", migrated.database_url, migrated.data_dir), "my")
    try:
        async with db.session() as session:  # "somehow missing"
            await session.execute(
                delete(OwnedCharacter).where(
                    OwnedCharacter.user_id == new_user.id, OwnedCharacter.character_code == "char-eco"
                )
            )
    finally:
        await db.dispose()
    body = (await my_client.get("/api/v1/users/me/characters", headers=new_user.headers)).json()
    assert [c["name"] for c in body] == ["이코", "페이피"]  # 이코 first even though re-granted just now
    assert [c["source"] for c in body] == ["default", "scan"]


async def test_collected_characters_and_ownership(
    my_client: httpx.AsyncClient, new_user: User, deliver: Deliver
) -> None:
    headers = new_user.headers
    await deliver("scan.reward_granted", reward(new_user, "char-petty", "페티", True))
    await deliver("scan.reward_granted", reward(new_user, "char-glassy", "글래시", True))
    await deliver("scan.reward_granted", reward(new_user, "char-petty", "페티", False))
    body = (await my_client.get("/api/v1/users/me/characters", headers=headers)).json()
    assert [c["name"] for c in body] == ["이코", "페티", "글래시"]
    catalog = {c.code: c for c in characters()}
    assert body[1]["id"] == str(catalog["char-petty"].id)

    async def owned(name: str) -> tuple[int, dict[str, object]]:
        response = await my_client.get(f"/api/v1/users/me/characters/{quote(name)}/ownership", headers=headers)
        return response.status_code, response.json()

    assert await owned("페티") == (200, {"character_name": "페티", "owned": True})
    assert await owned("이코") == (200, {"character_name": "이코", "owned": True})
    assert await owned("페이피") == (200, {"character_name": "페이피", "owned": False})
    status, error = await owned("없는캐릭터")
    assert (status, error["code"]) == (404, "CHARACTER_NOT_FOUND")
    anonymous = await my_client.get(f"/api/v1/users/me/characters/{quote('페티')}/ownership")
    assert anonymous.status_code == 401


async def test_points_balance_history_and_paging(
    my_client: httpx.AsyncClient, new_user: User, deliver: Deliver
) -> None:
    url, headers = "/api/v1/users/me/points", new_user.headers
    empty = (await my_client.get(url, headers=headers)).json()
    assert empty == {"balance": 0, "history": [], "next_cursor": None}  # 이코 earns nothing
    jobs = [uuid.uuid4() for _ in range(5)]
    await deliver("scan.reward_granted", reward(new_user, "char-paepy", "페이피", True, jobs[0]))
    for job in jobs[1:]:
        await deliver("scan.reward_granted", reward(new_user, "char-paepy", "페이피", False, job))
    body = (await my_client.get(url, headers=headers)).json()
    assert body["balance"] == 60 + 4 * 10
    assert len(body["history"]) == 6
    assert body["next_cursor"] is None
    first = {(e["reason"], e["delta"]) for e in body["history"] if e["job_id"] == str(jobs[0])}
    assert first == {("scan_reward", 10), ("character_collected", 50)}
    assert body["history"][0]["job_id"] == str(jobs[-1])  # newest first
    assert set(body["history"][0]) == {"id", "delta", "reason", "job_id", "character_name", "created_at"}

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await my_client.get(url, headers=headers, params=params)).json()
        assert page["balance"] == 100
        seen += [e["id"] for e in page["history"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in body["history"]]


async def test_points_input_errors(my_client: httpx.AsyncClient, new_user: User) -> None:
    url, headers = "/api/v1/users/me/points", new_user.headers
    for cursor in ("not-a-cursor", "!!!", "eyJhIjoxfQ", "WzEsMl0"):
        response = await my_client.get(url, headers=headers, params={"cursor": cursor})
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_CURSOR"), cursor
    for limit in ("0", "101", "ten"):
        assert (await my_client.get(url, headers=headers, params={"limit": limit})).status_code == 422


async def test_a_reward_counts_once_per_event_and_once_per_job(
    my_client: httpx.AsyncClient, new_user: User, migrated: CommonSettings, deliver: Deliver
) -> None:
    url, headers = "/api/v1/users/me/points", new_user.headers
    first = reward(new_user, "char-paepy", "페이피", True)
    event = await deliver("scan.reward_granted", first)
    await deliver("scan.reward_granted", first, event.id)  # redelivered: the inbox skips it
    await deliver("scan.reward_granted", first)  # the same job under another event id: the ledger's key
    # A delivery batch (RabbitMQ burst) with an id twice and one seen before: each applied once.
    runtime = ServiceRuntime("my", "my", migrated)
    try:
        [subscription] = build(runtime)
        assert subscription.batch_handler is not None
        later = [
            Event(new_event_id(), "scan.reward_granted", reward(new_user, "char-paepy", "페이피", False), "", "test")
            for _ in range(2)
        ]
        await subscription.batch_handler([later[0], later[1], later[0], event])
        await subscription.batch_handler([later[1]])
    finally:
        await runtime.close()
    body = (await my_client.get(url, headers=headers)).json()
    assert body["balance"] == 60 + 2 * 10
    assert sorted((e["reason"], e["delta"]) for e in body["history"]) == [
        ("character_collected", 50), ("scan_reward", 10), ("scan_reward", 10), ("scan_reward", 10)
    ]  # fmt: skip
    owned = (await my_client.get("/api/v1/users/me/characters", headers=headers)).json()
    assert [c["name"] for c in owned] == ["이코", "페이피"]
