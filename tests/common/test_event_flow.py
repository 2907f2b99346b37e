"""Events between the real services, end to end: auth → my, scan → character → my, my → auth/character.

Embedded mode runs them over the in-process bus; real mode over RabbitMQ (quorum queues, DLQs),
PostgreSQL and Redis. Relay and consumers run exactly as ``eco2 dev`` runs them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.auth.app import create_app as create_auth_app
from services.auth.config import AuthSettings
from services.auth.models import Account, Identity, LoginEvent, Session
from services.character.models import Ownership, RewardDecision
from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.domain_events import ScanRewardGranted
from services.common.events import Event, OneStatement, OutboxSource, new_event_id
from services.my import consumers as my_consumers
from services.my.app import create_app as create_my_app
from services.my.config import MySettings
from services.my.models import OwnedCharacter, PointEntry, Profile
from services.workers import dead_letters, replay_dead_letters
from tests.auth.flows import dev_login, set_cookies
from tests.conftest import REAL
from tests.support.clients import app_client
from tests.support.events import Workers, emit_scan, event_workers, eventually, fake_scan_producer, scan_reward
from tests.support.tokens import issue_tokens

pytestmark = pytest.mark.slow


@pytest.fixture
async def scan_producer(migrated: CommonSettings) -> AsyncIterator[tuple[Database, OutboxSource]]:
    async with fake_scan_producer(migrated) as producer:
        yield producer


@pytest.fixture
async def workers(migrated: CommonSettings, scan_producer: tuple[Database, OutboxSource]) -> AsyncIterator[Workers]:
    async with event_workers(migrated, extra_sources=[scan_producer[1]]) as running:
        yield running


@pytest.fixture
async def my_client(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_my_app(common=migrated, settings=MySettings(environment="test"))) as client:
        yield client


@pytest.fixture
async def auth_client(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    settings = AuthSettings(
        environment="test",
        dev_login_enabled=True,
        secret_key="test-secret-key-0123456789",
        frontend_url="https://app.eco2.test",
    )
    async with app_client(create_auth_app(common=migrated, settings=settings)) as client:
        yield client


class Counter:
    """Row counts per user in every service's own database."""

    def __init__(self, common: CommonSettings) -> None:
        self.dbs = {
            name: Database(database_url_for(name, common.database_url, common.data_dir), name)
            for name in ("auth", "my", "character")
        }

    async def count(self, service: str, column: Any, user_id: uuid.UUID, *where: Any) -> int:
        async with self.dbs[service].session() as session:
            return int(await session.scalar(select(func.count()).where(column == user_id, *where)) or 0)

    async def my(self, user_id: uuid.UUID) -> tuple[int, int, int]:
        """(ledger entries, points balance, owned characters) in the my service."""
        async with self.dbs["my"].session() as session:
            entries = await session.scalar(select(func.count()).where(PointEntry.user_id == user_id))
            balance = await session.scalar(select(func.sum(PointEntry.delta)).where(PointEntry.user_id == user_id))
            owned = await session.scalar(select(func.count()).where(OwnedCharacter.user_id == user_id))
        return int(entries or 0), int(balance or 0), int(owned or 0)

    async def character(self, user_id: uuid.UUID) -> tuple[int, int]:
        """(ownership rows, stored decisions) in the character service."""
        return (
            await self.count("character", Ownership.user_id, user_id),
            await self.count("character", RewardDecision.user_id, user_id),
        )

    async def close(self) -> None:
        for db in self.dbs.values():
            await db.dispose()


@pytest.fixture
async def counter(migrated: CommonSettings) -> AsyncIterator[Counter]:
    counting = Counter(migrated)
    yield counting
    await counting.close()


async def test_login_creates_the_profile_through_the_bus(
    workers: Workers, auth_client: httpx.AsyncClient, my_client: httpx.AsyncClient, counter: Counter
) -> None:
    login = await dev_login(auth_client, f"flow-{uuid.uuid4().hex[:8]}", "분리수거왕")
    assert login.status_code == 302
    access = set_cookies(login)["s_access"].split(";", 1)[0].split("=", 1)[1]
    headers = {"Authorization": f"Bearer {access}"}

    async def synced() -> bool:
        body = (await my_client.get("/api/v1/users/me", headers=headers)).json()
        return bool(body["nickname"] == "분리수거왕" and body["last_login_at"] is not None)

    await eventually(synced)
    body = (await my_client.get("/api/v1/users/me", headers=headers)).json()
    assert body["username"] == body["display_name"] == "분리수거왕"
    assert body["provider"] == "dev"
    characters = (await my_client.get("/api/v1/users/me/characters", headers=headers)).json()
    assert [c["name"] for c in characters] == ["이코"]
    assert await counter.count("my", Profile.user_id, uuid.UUID(body["id"])) == 1


async def test_scan_outcomes_become_characters_and_points(
    workers: Workers,
    scan_producer: tuple[Database, OutboxSource],
    my_client: httpx.AsyncClient,
    counter: Counter,
    migrated: CommonSettings,
) -> None:
    user = uuid.uuid4()
    jobs = [uuid.uuid4() for _ in range(4)]
    await emit_scan(
        scan_producer[0],
        # as the scan pipeline decides them: the second bottle finds 글래시 owned; jobs[2] had something
        # left to fix (not eligible: no event at all)
        scan_reward(user, jobs[0], middle="유리병"),
        scan_reward(user, jobs[1], middle="유리병", received=False),
        scan_reward(user, jobs[3], middle="금속류"),
    )
    workers.relay.wake()

    async def applied() -> bool:
        return await counter.my(user) == (5, 60 + 10 + 60, 2)

    await eventually(applied)
    headers = {"Authorization": f"Bearer {issue_tokens(migrated, user).access}"}
    body = (await my_client.get("/api/v1/users/me/characters", headers=headers)).json()
    assert body[0]["name"] == "이코"  # the others in the order the (concurrent) consumer granted them
    assert sorted(c["name"] for c in body[1:]) == ["글래시", "메탈리"]
    points = (await my_client.get("/api/v1/users/me/points", headers=headers)).json()
    assert points["balance"] == 130


async def test_a_hundred_deliveries_of_one_outcome_equal_one(
    workers: Workers, scan_producer: tuple[Database, OutboxSource], counter: Counter
) -> None:
    user, job = uuid.uuid4(), uuid.uuid4()
    payload = scan_reward(user, job, middle="비닐류")
    # The same event redelivered 100 times (one event id) ...
    event = Event(new_event_id(), payload.name, payload.payload(), "2026-01-01T00:00:00.000Z", "scan")
    await asyncio.gather(*(workers.bus.publish(event) for _ in range(100)))
    # ... and the same outcome reported 100 more times under fresh event ids (a retrying producer).
    await emit_scan(scan_producer[0], *[payload] * 100)
    workers.relay.wake()

    async def applied() -> bool:
        return await counter.my(user) == (2, 60, 1)

    await eventually(applied)
    await asyncio.sleep(1.0)  # stragglers would land now
    assert await counter.my(user) == (2, 60, 1)


async def test_a_consumer_crash_mid_event_is_retried_and_lands_once(
    workers: Workers,
    scan_producer: tuple[Database, OutboxSource],
    counter: Counter,
    monkeypatch: pytest.MonkeyPatch,
    migrated: CommonSettings,
) -> None:
    user = uuid.uuid4()
    crashes = {"left": 1}
    real = my_consumers.reward_granted

    async def crash_after_writing(ctx: Any, session: Any, event: ScanRewardGranted) -> None:
        await real(ctx, session, event)  # the writes happen, then the process "dies" before commit
        if event.user_id == user and crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("simulated crash mid-event")

    monkeypatch.setitem(my_consumers.consumer.handlers, ScanRewardGranted, crash_after_writing)
    # The session form (SQLite's, and PostgreSQL's without the one-statement form): a transaction to die in.
    monkeypatch.delitem(my_consumers.consumer.statements, ScanRewardGranted)
    await lands_once_after_the_crash(workers, scan_producer[0], counter, migrated, user, crashes)


async def lands_once_after_the_crash(workers: Workers, producer_db: Database, counter: Counter,
                                     migrated: CommonSettings, user: uuid.UUID, crashes: dict[str, int]) -> None:  # fmt: skip
    """Emit one reward for ``user``: once the simulated crash has happened it is applied exactly once
    (the redelivery is a duplicate) and nothing of it is dead-lettered."""
    await emit_scan(producer_db, scan_reward(user, middle="전지"))
    workers.relay.wake()

    async def applied() -> bool:
        return await counter.my(user) == (2, 60, 1) and crashes["left"] == 0

    await eventually(applied)
    await asyncio.sleep(0.5)  # a redelivery would land now
    assert await counter.my(user) == (2, 60, 1)
    letters = await dead_letters(migrated, "my")
    assert not [x for x in letters if x.event.payload.get("user_id") == str(user)]


@pytest.mark.skipif(not REAL, reason="the one-statement form is PostgreSQL's")
async def test_a_consumer_dying_after_its_one_statement_before_the_ack_lands_once(
    workers: Workers,
    scan_producer: tuple[Database, OutboxSource],
    counter: Counter,
    monkeypatch: pytest.MonkeyPatch,
    migrated: CommonSettings,
) -> None:
    user = uuid.uuid4()
    crashes = {"left": 1}
    consumer = my_consumers.consumer
    real = consumer._apply_statements

    async def crash_after_commit(db: Any, context: Any, envelopes: Any, events: Any) -> list[bool]:
        fresh = await real(db, context, envelopes, events)  # committed (autocommit), not yet acked
        if any(getattr(e, "user_id", None) == user for e in events) and crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("simulated crash before the ack")
        return fresh

    monkeypatch.setattr(consumer, "_apply_statements", crash_after_commit)
    await lands_once_after_the_crash(workers, scan_producer[0], counter, migrated, user, crashes)


async def test_a_poison_event_is_parked_then_replayed(
    workers: Workers,
    scan_producer: tuple[Database, OutboxSource],
    counter: Counter,
    monkeypatch: pytest.MonkeyPatch,
    migrated: CommonSettings,
) -> None:
    user = uuid.uuid4()
    real = my_consumers.reward_granted
    broken = {"on": True}

    async def bug(ctx: Any, session: Any, event: ScanRewardGranted) -> None:
        if broken["on"] and event.user_id == user:
            raise RuntimeError("a bug in this consumer")
        await real(ctx, session, event)

    monkeypatch.setitem(my_consumers.consumer.handlers, ScanRewardGranted, bug)
    one = my_consumers.consumer.statements[ScanRewardGranted]  # PostgreSQL's form has the same bug

    def bug_params(ctx: Any, event: ScanRewardGranted) -> dict[str, Any]:
        if broken["on"] and event.user_id == user:
            raise RuntimeError("a bug in this consumer")
        return one.params(ctx, event)

    monkeypatch.setitem(my_consumers.consumer.statements, ScanRewardGranted, OneStatement(one.sql, bug_params))
    await emit_scan(scan_producer[0], scan_reward(user, middle="조명제품"))
    workers.relay.wake()

    async def parked() -> bool:
        return any(x.event.payload.get("user_id") == str(user) for x in await dead_letters(migrated, "my"))

    await eventually(parked)
    assert await counter.my(user) == (0, 0, 0)

    broken["on"] = False  # the fix is deployed: replay, as `eco2 events replay my` does
    if REAL:
        listed = eco2_cli(migrated, "events", "dead-letters", "my")
        assert str(user) in listed
        assert "scan.reward_granted" in listed
        assert "replayed" in eco2_cli(migrated, "events", "replay", "my")
    else:
        assert await replay_dead_letters(migrated, "my") >= 1

    async def applied() -> bool:
        return await counter.my(user) == (2, 60, 1)

    await eventually(applied)
    assert not await parked()


def eco2_cli(common: CommonSettings, *args: str) -> str:
    """Run the real ``eco2`` command in its own process against this test run's broker namespace."""
    assert common.rabbitmq_url
    env = os.environ | {
        "RABBITMQ_URL": common.rabbitmq_url,
        "EVENTS_NAMESPACE": common.events_namespace,
        "EVENTS_MAX_DELIVERIES": str(common.events_max_deliveries),
        "ENVIRONMENT": "development",
        "COLUMNS": "400",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_deleting_a_user_erases_their_rows_everywhere(
    workers: Workers,
    scan_producer: tuple[Database, OutboxSource],
    auth_client: httpx.AsyncClient,
    my_client: httpx.AsyncClient,
    counter: Counter,
) -> None:
    login = await dev_login(auth_client, f"leaver-{uuid.uuid4().hex[:8]}", "떠나는사람")
    cookies = {name: value.split(";", 1)[0].split("=", 1)[1] for name, value in set_cookies(login).items()}
    headers = {"Authorization": f"Bearer {cookies['s_access']}"}
    user = uuid.UUID((await my_client.get("/api/v1/users/me", headers=headers)).json()["id"])
    await emit_scan(scan_producer[0], scan_reward(user, middle="의류및원단"))
    workers.relay.wake()

    async def rewarded() -> bool:
        return await counter.my(user) == (2, 60, 2)

    await eventually(rewarded)
    assert await counter.count("auth", Account.id, user) == 1

    assert (await my_client.delete("/api/v1/users/me", headers=headers)).status_code == 204
    workers.relay.wake()

    async def erased() -> bool:
        remaining = [
            await counter.count("auth", Account.id, user),
            await counter.count("auth", Identity.account_id, user),
            await counter.count("auth", Session.account_id, user),
            await counter.count("auth", LoginEvent.account_id, user),
            await counter.count("my", Profile.user_id, user),
            *await counter.my(user),
            *await counter.character(user),
        ]
        return not any(remaining)

    await eventually(erased)
    auth_client.cookies.set("s_refresh", cookies["s_refresh"])
    refreshed = await auth_client.post("/api/v1/auth/refresh")
    assert refreshed.status_code == 401
    assert (await my_client.get("/api/v1/users/me", headers=headers)).status_code == 401
