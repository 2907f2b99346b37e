"""The reward decided in the worker's finishing transaction (docs/api.md, scan: reward; services/scan/reward.py):
exactly once under concurrent finishes, stable across redeliveries, nothing for an erased user, and the
``scan.reward_granted`` row committed with the result."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.clock import utcnow
from services.common.db import Database, database_url_for
from services.common.domain_events import UserDeleted
from services.common.runtime import ServiceRuntime
from services.my.models import OwnedCharacter, PointEntry
from services.scan import consumers
from services.scan.models import ClaimedCharacter, Job, Outbox
from tests.scan.conftest import Stack, StackFactory
from tests.support.events import envelope, event_workers, eventually


async def granted_events(stack: Stack) -> list[dict[str, Any]]:
    async with stack.service.db.session() as session:
        rows = (await session.execute(select(Outbox.payload).where(Outbox.type == "scan.reward_granted"))).scalars()
        return [p for p in rows if p["user_id"] == str(stack.user_id)]


async def claims(stack: Stack) -> list[ClaimedCharacter]:
    async with stack.service.db.session() as session:
        query = select(ClaimedCharacter).where(ClaimedCharacter.user_id == stack.user_id)
        return list((await session.execute(query)).scalars())


async def test_concurrent_finishes_grant_the_character_once(make_stack: StackFactory) -> None:
    """Two jobs for the same character finishing at the same moment: one receives it, the other finds it owned."""
    stack = await make_stack(worker=False)
    jobs = [(await stack.submit("라벨 뗀 생수병")).json()["job_id"] for _ in range(4)]
    pipeline = stack.service.pipeline
    await asyncio.gather(*(pipeline.run(job_id, 1) for job_id in jobs))
    results = [await stack.result(job_id) for job_id in jobs]
    received = [r["reward"]["received"] for r in results]
    assert received.count(True) == 1
    assert all(r["reward"]["already_owned"] is not r["reward"]["received"] for r in results)
    assert sorted(r["reward"]["points_awarded"] for r in results) == [10, 10, 10, 60]
    (claim,) = await claims(stack)
    winner = jobs[received.index(True)]
    assert (claim.character_code, str(claim.job_id)) == ("char-petty", winner)
    events = await granted_events(stack)
    assert sorted(e["job_id"] for e in events) == sorted(jobs)  # one event per eligible job
    assert [e["job_id"] for e in events if e["received"]] == [winner]


async def test_redelivery_after_a_crash_between_finish_and_done(make_stack: StackFactory,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The worker dies after committing the result but before writing its events: the redelivery
    decides nothing again (same reward, no second event) and only sends the missing events."""
    stack = await make_stack(worker=False)
    job_id = (await stack.submit("라벨 뗀 생수병")).json()["job_id"]
    pipeline = stack.service.pipeline

    async def crash(*_: Any, **__: Any) -> None:
        raise ConnectionError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_emit_done", crash)
        with pytest.raises(ConnectionError):
            await pipeline.run(job_id, 1)
    first = (await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=stack.headers)).json()
    assert first["reward"]["received"] is True
    await pipeline.run(job_id, 2)
    await pipeline.run(job_id, 3)
    assert await stack.result(job_id) == first
    _, frames = await stack.stream(job_id)
    events = [(f["event"], f["data"]["status"]) for f in frames[1:]]
    assert events.count(("answer", "completed")) == 1
    assert events.count(("reward", "completed")) == 1
    assert events[-1] == ("done", "completed")
    reward_event = next(f for f in frames[1:] if f["event"] == "reward" and f["data"]["status"] == "completed")
    assert reward_event["data"]["result"] == first["reward"]
    assert len(await granted_events(stack)) == 1


async def eligible_scan_in_answer_call(make_stack: StackFactory) -> tuple[Stack, str, asyncio.Task[None]]:
    """An eligible scan run by the pipeline directly (no worker), paused inside its answer call."""
    stack = await make_stack(model=True, worker=False)
    stack.llm.latency["answer"] = 0.5
    job_id = (await stack.submit("라벨 뗀 생수병")).json()["job_id"]
    running = asyncio.create_task(stack.service.pipeline.run(job_id, 1))
    await asyncio.sleep(0.25)  # inside the answer call
    return stack, job_id, running


async def test_a_user_deleted_mid_scan_is_granted_nothing(make_stack: StackFactory) -> None:
    stack, _, running = await eligible_scan_in_answer_call(make_stack)
    runtime = ServiceRuntime("scan", "scan", stack.common)
    try:
        (subscription,) = consumers.build(runtime, stack.settings)
        await subscription.handler(envelope(UserDeleted(user_id=stack.user_id, deleted_at=utcnow()), "my"))
    finally:
        await runtime.close()
    await running
    async with stack.service.db.session() as session:
        assert await session.scalar(select(func.count()).where(Job.user_id == stack.user_id)) == 0
    assert await claims(stack) == []
    assert await granted_events(stack) == []


async def test_a_job_finished_by_the_sweeper_mid_scan_is_granted_nothing(make_stack: StackFactory) -> None:
    """The finish lost the race (the sweeper failed the job during the answer call): the claim, the
    result and the event all depend on the compare-and-set, so nothing is granted and the failure stands."""
    stack, job_id, running = await eligible_scan_in_answer_call(make_stack)
    pipeline = stack.service.pipeline
    job = await pipeline._load(job_id)
    assert job is not None
    assert job.status == "processing"
    await pipeline.fail(job, "SCAN_TIMEOUT")  # what the sweeper does to an overdue job
    await running
    result = await stack.result(job_id)
    assert (result["status"], result["error"]["code"]) == ("failed", "SCAN_TIMEOUT")
    assert await claims(stack) == []
    assert await granted_events(stack) == []


async def test_ineligible_scans_claim_nothing_and_emit_nothing(make_stack: StackFactory) -> None:
    stack = await make_stack()
    result = await stack.result((await stack.submit("라벨 안 뗀 생수병")).json()["job_id"])
    assert result["reward"] is None
    assert await claims(stack) == []
    assert await granted_events(stack) == []


async def test_rewards_switched_off(make_stack: StackFactory) -> None:
    stack = await make_stack(rewards_enabled=False)
    result = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
    assert result["reward"] is None
    assert await claims(stack) == []


async def test_ownership_outlives_the_job(make_stack: StackFactory) -> None:
    """Jobs are purged after retention; the claim is not, so a later scan still finds the character owned."""
    stack = await make_stack()
    first = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
    async with stack.service.db.session() as session:
        job = await session.get(Job, uuid.UUID(first["job_id"]))
        assert job is not None
        await session.delete(job)
    again = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
    assert (again["reward"]["received"], again["reward"]["already_owned"]) == (False, True)


async def test_the_users_ledger_receives_the_reward(make_stack: StackFactory) -> None:
    """End to end through the real outbox, relay, bus and the my consumer: owned copy and ledger, once."""
    stack = await make_stack()
    async with event_workers(stack.common, consumers=("my",)) as workers:
        first = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
        again = await stack.result((await stack.submit("라벨 뗀 생수병")).json()["job_id"])
        assert (first["reward"]["points_awarded"], again["reward"]["points_awarded"]) == (60, 10)
        workers.relay.wake()
        my_db = Database(database_url_for("my", stack.common.database_url, stack.common.data_dir), "my")
        try:

            async def ledger() -> tuple[int, int, int]:
                async with my_db.session() as session:
                    mine = PointEntry.user_id == stack.user_id
                    entries = await session.scalar(select(func.count()).where(mine))
                    balance = await session.scalar(select(func.coalesce(func.sum(PointEntry.delta), 0)).where(mine))
                    owned = await session.scalar(select(func.count()).where(OwnedCharacter.user_id == stack.user_id))
                return int(entries or 0), int(balance or 0), int(owned or 0)

            async def applied() -> bool:
                return await ledger() == (3, 70, 1)  # scan_reward ×2 + character_collected; 페티 owned

            await eventually(applied)
            await asyncio.sleep(0.5)
            assert await ledger() == (3, 70, 1)
        finally:
            await my_db.dispose()
