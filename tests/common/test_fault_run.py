"""Fault run (real mode only): the reward events of 500 scan outcomes for 50 users while RabbitMQ goes away.

The broker is a private RabbitMQ node of this test (``tests/support/private.py``: its own node name,
ports and data; the shared broker on 5672 is never touched). Its application is stopped part-way
through the burst (``rabbitmqctl stop_app``) for a few seconds and started again — always, even if
the test fails. Afterwards every reward event, every owned character and every ledger entry must be
present exactly once. The counts are printed (``pytest -s`` shows them; CI keeps them in the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.domain_events import ScanRewardGranted
from services.my.models import OwnedCharacter, PointEntry
from services.workers import dead_letters
from tests.support.events import (
    ScanOutbox,
    delete_broker_objects,
    emit_scan,
    event_workers,
    fake_scan_producer,
    scan_reward,
)
from tests.support.private import PrivateRabbit, private_rabbitmq

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


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateRabbit]:
    with private_rabbitmq() as node:
        yield node


@contextlib.contextmanager
def broker_outage_after(broker: PrivateRabbit, delay: float) -> Iterator[dict[str, float]]:
    """Stop the broker ``delay`` s from now for OUTAGE_SECONDS; guarantee it is running on exit."""
    timings: dict[str, float] = {}
    done = threading.Event()

    def outage() -> None:
        time.sleep(delay)
        try:
            timings["stopped_at"] = time.monotonic()
            broker.stop()
            time.sleep(OUTAGE_SECONDS)
        finally:
            broker.start()
            timings["started_at"] = time.monotonic()
            done.set()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    try:
        yield timings
    finally:
        thread.join(timeout=180)
        if not done.is_set():  # the thread died before restoring it: restore here
            broker.start()


def plan() -> tuple[list[ScanRewardGranted], dict[uuid.UUID, tuple[int, int]]]:
    """500 outcomes and, per user, (eligible jobs, distinct characters collected). Only eligible
    outcomes produce an event; the scan pipeline decides ``received`` (first of that character)."""
    outcomes: list[ScanRewardGranted] = []
    expected: dict[uuid.UUID, tuple[int, int]] = {}
    for u in range(USERS):
        user = uuid.uuid4()
        eligible, collected = 0, set()
        for j in range(JOBS_PER_USER):
            middle = MIDDLES[(u + j * (u % 3 + 1)) % len(MIDDLES)]  # some users scan the same thing twice
            prepared = (u + j) % 4 != 0  # every fourth outcome has something left to fix
            if prepared:
                outcomes.append(scan_reward(user, middle=middle, received=middle not in collected))
                eligible += 1
                collected.add(middle)
        expected[user] = (eligible, len(collected))
    return outcomes, expected


async def test_no_reward_is_lost_or_doubled_when_the_broker_goes_away(
    migrated: CommonSettings, broker: PrivateRabbit
) -> None:
    # The private broker, and room for the redeliveries an outage causes, so nothing is
    # dead-lettered merely for having been in flight twice.
    common = migrated.model_copy(
        update={
            "rabbitmq_url": broker.url,
            "events_namespace": f"{migrated.events_namespace}-fault",
            "events_max_deliveries": 10,
        }
    )
    outcomes, expected = plan()
    users = list(expected)
    my_db = Database(database_url_for("my", common.database_url, common.data_dir), "my")
    started = time.monotonic()
    try:
        async with (
            fake_scan_producer(common) as (scan_db, scan_source),
            event_workers(common, consumers=("my",), extra_sources=[scan_source]),
        ):
            with broker_outage_after(broker, delay=1.0) as timings:
                for batch in range(10):  # the burst: a tenth of the outcomes every 0.25 s, the outage lands inside it
                    size = -(-len(outcomes) // 10)
                    await emit_scan(scan_db, *outcomes[batch * size : (batch + 1) * size])
                    await asyncio.sleep(0.25)
                deadline = time.monotonic() + 100
                wanted = sum(e + c for e, c in expected.values())
                while (landed := await ledger_rows(my_db, users)) < wanted:
                    assert time.monotonic() < deadline, (
                        f"rewards still missing 100 s after the burst: {landed} of {wanted} ledger rows; "
                        f"broker queues:\n{broker.queues()}"
                    )
                    await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # anything doubled would have landed by now
            parked = [len(await dead_letters(common, consumer)) for consumer in ("my",)]
            reward_events = await scan_events(scan_db, users)

        entries, per_key_max, balance, owned = await my_counts(my_db, users)
    finally:
        await my_db.dispose()
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
        f"  scan: reward_events={reward_events}/{want_eligible}\n"
        f"  my: ledger={entries}/{want_entries} owned={owned}/{want_collected}"
        f" balance={balance}/{10 * want_eligible + 50 * want_collected}\n"
        f"  dead_letters={sum(parked)} lost={lost} doubled={doubled}"
    )
    assert reward_events == want_eligible
    assert (entries, owned, balance) == (want_entries, want_collected, 10 * want_eligible + 50 * want_collected)
    assert per_key_max == 1
    assert parked == [0]
    assert lost == doubled == 0


async def ledger_rows(db: Database, users: list[uuid.UUID]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).where(PointEntry.user_id.in_(users))) or 0)


async def scan_events(db: Database, users: list[uuid.UUID]) -> int:
    wanted = {str(u) for u in users}
    async with db.session() as session:
        payloads = (await session.execute(select(ScanOutbox.payload))).scalars().all()
    return sum(1 for p in payloads if p["user_id"] in wanted)


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
