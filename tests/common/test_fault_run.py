"""Fault run (real mode only): a burst of 500 scan outcomes for 50 users while RabbitMQ goes away.

The broker application is stopped part-way through the burst (``rabbitmqctl stop_app``) for a few
seconds and started again — always, even if the test fails. Afterwards every reward decision, every
ownership row and every ledger entry must be present exactly once. The counts are printed
(``pytest -s`` shows them; CI keeps them in the log).

Other runs share this broker: the outage is kept to a few seconds and this run uses its own
namespace, removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from services.character.models import Outbox as CharacterOutbox
from services.character.models import Ownership, RewardDecision
from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.domain_events import ScanCompleted
from services.my.models import OwnedCharacter, PointEntry
from services.workers import dead_letters
from tests.support.events import delete_broker_objects, emit_scan, event_workers, fake_scan_producer, scan_completed

pytestmark = [pytest.mark.real_only, pytest.mark.slow]

USERS = 50
JOBS_PER_USER = 10
MIDDLES = [
    "종이",
    "종이팩",
    "무색페트병",
    "플라스틱류",
    "비닐류",
    "발포합성수지",
    "유리병",
    "금속류",
    "의류및원단",
    "전지",
]
OUTAGE_SECONDS = 2.0


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def broker_outage_after(delay: float) -> Iterator[dict[str, float]]:
    """Stop the broker ``delay`` s from now for OUTAGE_SECONDS; guarantee it is running on exit."""
    timings: dict[str, float] = {}
    done = threading.Event()

    def outage() -> None:
        time.sleep(delay)
        try:
            timings["stopped_at"] = time.monotonic()
            rabbitmqctl("stop_app")
            time.sleep(OUTAGE_SECONDS)
        finally:
            rabbitmqctl("start_app")
            timings["started_at"] = time.monotonic()
            done.set()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    try:
        yield timings
    finally:
        thread.join(timeout=180)
        if not done.is_set():  # the thread died before restoring it: restore here
            rabbitmqctl("start_app")


def plan() -> tuple[list[ScanCompleted], dict[uuid.UUID, tuple[int, int]]]:
    """500 outcomes and, per user, (eligible jobs, distinct characters collected)."""
    outcomes: list[ScanCompleted] = []
    expected: dict[uuid.UUID, tuple[int, int]] = {}
    for u in range(USERS):
        user = uuid.uuid4()
        eligible, collected = 0, set()
        for j in range(JOBS_PER_USER):
            middle = MIDDLES[(u + j * (u % 3 + 1)) % len(MIDDLES)]  # some users scan the same thing twice
            prepared = (u + j) % 4 != 0  # every fourth outcome has something left to fix
            outcomes.append(
                scan_completed(
                    user, middle=middle, minor="", insufficiencies=[] if prepared else ["라벨을 떼어 주세요"]
                )
            )
            if prepared:
                eligible += 1
                collected.add(middle)
        expected[user] = (eligible, len(collected))
    return outcomes, expected


async def test_no_reward_is_lost_or_doubled_when_the_broker_goes_away(migrated: CommonSettings) -> None:
    # Its own namespace, and room for the redeliveries an outage causes, so nothing is dead-lettered
    # merely for having been in flight twice.
    common = migrated.model_copy(
        update={"events_namespace": f"{migrated.events_namespace}-fault", "events_max_deliveries": 10}
    )
    outcomes, expected = plan()
    users = list(expected)
    my_db = Database(database_url_for("my", common.database_url, common.data_dir), "my")
    character_db = Database(database_url_for("character", common.database_url, common.data_dir), "character")
    started = time.monotonic()
    try:
        async with (
            fake_scan_producer(common) as (scan_db, scan_source),
            event_workers(common, consumers=("character", "my"), extra_sources=[scan_source]),
        ):
            with broker_outage_after(delay=1.0) as timings:
                for batch in range(10):  # the burst: 50 outcomes every 0.25 s, the outage lands inside it
                    await emit_scan(scan_db, *outcomes[batch * 50 : (batch + 1) * 50])
                    await asyncio.sleep(0.25)
                deadline = time.monotonic() + 100
                while await ledger_rows(my_db, users) < sum(e + c for e, c in expected.values()):
                    assert time.monotonic() < deadline, "rewards still missing 100 s after the burst"
                    await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # anything doubled would have landed by now
            parked = [len(await dead_letters(common, consumer)) for consumer in ("character", "my")]

        decisions, eligible_decisions, ownership, reward_events = await character_counts(character_db, users)
        entries, per_key_max, balance, owned = await my_counts(my_db, users)
    finally:
        await my_db.dispose()
        await character_db.dispose()
        await delete_broker_objects(common)

    want_eligible = sum(e for e, _ in expected.values())
    want_collected = sum(c for _, c in expected.values())
    want_entries = want_eligible + want_collected
    lost = max(0, want_entries - entries) + max(0, want_collected - owned)
    doubled = max(0, entries - want_entries) + max(0, owned - want_collected) + (per_key_max > 1)
    print(
        "\nfault run:"
        f" outcomes={len(outcomes)} users={USERS}"
        f" broker_down={timings.get('started_at', 0) - timings.get('stopped_at', 0):.1f}s"
        f" total={time.monotonic() - started:.1f}s\n"
        f"  character: decisions={decisions}/{len(outcomes)} eligible={eligible_decisions}/{want_eligible}"
        f" ownership={ownership}/{want_collected} reward_events={reward_events}/{want_eligible}\n"
        f"  my: ledger={entries}/{want_entries} owned={owned}/{want_collected}"
        f" balance={balance}/{10 * want_eligible + 50 * want_collected}\n"
        f"  dead_letters={sum(parked)} lost={lost} doubled={doubled}"
    )
    assert (decisions, eligible_decisions, ownership, reward_events) == (
        len(outcomes),
        want_eligible,
        want_collected,
        want_eligible,
    )
    assert (entries, owned, balance) == (want_entries, want_collected, 10 * want_eligible + 50 * want_collected)
    assert per_key_max == 1
    assert parked == [0, 0]
    assert lost == doubled == 0


async def ledger_rows(db: Database, users: list[uuid.UUID]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).where(PointEntry.user_id.in_(users))) or 0)


async def character_counts(db: Database, users: list[uuid.UUID]) -> tuple[int, int, int, int]:
    wanted = {str(u) for u in users}
    async with db.session() as session:
        decisions = await session.scalar(select(func.count()).where(RewardDecision.user_id.in_(users)))
        eligible = await session.scalar(
            select(func.count()).where(RewardDecision.user_id.in_(users), RewardDecision.eligible.is_(True))
        )
        ownership = await session.scalar(select(func.count()).where(Ownership.user_id.in_(users)))
        payloads = (
            (
                await session.execute(
                    select(CharacterOutbox.payload).where(CharacterOutbox.type == "scan.reward_granted")
                )
            )
            .scalars()
            .all()
        )
    events = sum(1 for p in payloads if p["user_id"] in wanted)
    return int(decisions or 0), int(eligible or 0), int(ownership or 0), events


async def my_counts(db: Database, users: list[uuid.UUID]) -> tuple[int, int, int, int]:
    async with db.session() as session:
        entries = await session.scalar(select(func.count()).where(PointEntry.user_id.in_(users)))
        per_key = (
            select(func.count().label("n"))
            .where(PointEntry.user_id.in_(users))
            .group_by(PointEntry.user_id, PointEntry.job_id, PointEntry.reason)
            .subquery()
        )
        per_key_max = await session.scalar(select(func.coalesce(func.max(per_key.c.n), 0)))
        balance = await session.scalar(
            select(func.coalesce(func.sum(PointEntry.delta), 0)).where(PointEntry.user_id.in_(users))
        )
        owned = await session.scalar(select(func.count()).where(OwnedCharacter.user_id.in_(users)))
    return int(entries or 0), int(per_key_max or 0), int(balance or 0), int(owned or 0)
