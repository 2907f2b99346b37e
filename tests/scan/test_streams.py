"""SSE resume/keepalive/cap (docs/api.md, SSE), the 202 view, and the failure paths: deadline, a worker
that crashes mid-job, no worker at all, account deletion."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import select

from services.common.clock import utcnow
from services.common.domain_events import UserDeleted
from services.common.runtime import ServiceRuntime
from services.scan import consumers
from services.scan.models import ClaimedCharacter, IdempotencyKey, Job
from tests.conftest import REAL
from tests.scan.conftest import StackFactory, start_worker
from tests.support.events import envelope
from tests.support.sse import parse_sse


async def test_resume_with_last_event_id(make_stack: StackFactory) -> None:
    stack = await make_stack()
    job_id = (await stack.submit("생수병")).json()["job_id"]
    await stack.result(job_id)
    _, full = await stack.stream(job_id)
    done_seq = int(full[-1]["id"])
    _, resumed = await stack.stream(job_id, "3")
    assert [int(f["id"]) for f in resumed[1:]] == list(range(4, done_seq + 1))
    _, after_done = await stack.stream(job_id, str(done_seq))
    assert [(f["event"], int(f["id"])) for f in after_done[1:]] == [("done", done_seq)]  # done always last
    _, garbage = await stack.stream(job_id, "abc")
    assert len(garbage) == len(full)  # unparsable → a fresh connection


async def test_keepalive_and_connection_cap(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, sse_keepalive_seconds=0.2, sse_max_seconds=0.7)
    job_id = (await stack.submit("생수병")).json()["job_id"]
    response = await stack.scan.get(
        f"/api/v1/scan/{job_id}/events", headers={**stack.headers, "Origin": "https://app.eco2.test"}
    )
    assert response.headers["access-control-allow-origin"] == "https://app.eco2.test"
    assert response.headers["access-control-allow-credentials"] == "true"
    frames = parse_sse(response.text)
    assert frames[0] == {"retry": "3000"}
    assert frames[1]["event"] == "queued"
    keepalives = [f for f in frames if f.get("event") == "keepalive"]
    assert len(keepalives) >= 2
    assert all("id" not in f and set(f["data"]) == {"ts"} for f in keepalives)
    assert frames[-1]["event"] == "error"
    assert frames[-1]["data"]["error"] == "timeout"
    assert frames[-1]["id"] == "1"  # the last delivered seq, so a reconnect resumes there


async def test_processing_result_is_202(make_stack: StackFactory) -> None:
    stack = await make_stack(model=True)
    stack.llm.latency["classification"] = 1.0
    job_id = (await stack.submit()).json()["job_id"]
    response = await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=stack.headers)
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "2"
    body = response.json()
    assert body["job_id"] == job_id
    assert body["status"] == "processing"
    assert body["current_stage"] in {"queued", "vision"}
    assert body["progress"] == 0
    assert body["message"]
    assert (await stack.result(job_id))["status"] == "completed"


async def test_deadline_ends_the_job(make_stack: StackFactory) -> None:
    stack = await make_stack(model=True, job_deadline_seconds=0.6)
    stack.llm.latency["classification"] = 3.0
    job_id = (await stack.submit()).json()["job_id"]
    _, frames = await stack.stream(job_id)
    assert [(f["event"], f["data"]["status"]) for f in frames[-2:]] == [("vision", "failed"), ("done", "failed")]
    result = await stack.result(job_id)
    assert result["error"]["code"] == "SCAN_TIMEOUT"


async def test_no_worker_still_ends_within_deadline(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, job_deadline_seconds=0.2)
    job_id = (await stack.submit("생수병")).json()["job_id"]
    await asyncio.sleep(0.3)
    await stack.service.sweep()  # what every scan worker does every few seconds
    result = await stack.result(job_id)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "SCAN_TIMEOUT"
    _, frames = await stack.stream(job_id)
    assert frames[-1]["event"] == "done"
    assert frames[-1]["data"]["result"] == result


async def test_handler_error_is_redelivered_without_repeating_stages(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack(model=True)
    original = type(stack.service.pipeline)._answer
    crashes = {"left": 1}

    async def flaky_answer(self, job, checkpoint):  # type: ignore[no-untyped-def]
        if crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("worker bug on first delivery")
        return await original(self, job, checkpoint)

    monkeypatch.setattr(type(stack.service.pipeline), "_answer", flaky_answer)
    before = len(stack.llm.calls("classification"))
    job_id = (await stack.submit()).json()["job_id"]
    result = await stack.result(job_id)
    assert result["status"] == "completed"
    assert len(stack.llm.calls("classification")) - before == 1  # vision ran once
    _, frames = await stack.stream(job_id)
    events = [(f["event"], f["data"]["status"]) for f in frames[1:]]
    assert events.count(("vision", "completed")) == 1
    assert events[-1] == ("done", "completed")


@pytest.mark.real_only
async def test_crashed_worker_job_is_redelivered_and_resumes(make_stack: StackFactory) -> None:
    """A worker dies mid-answer (connection gone, nothing acked): RabbitMQ redelivers the job to
    another worker, which resumes after the stored vision/rule stages."""
    assert REAL
    stack = await make_stack(model=True, worker=False)
    stack.llm.latency["answer"] = 1.5
    async with contextlib.AsyncExitStack() as exits:
        kill = await start_worker(exits, stack.common, stack.settings, stack.service.http, stack.image_settings)
        before = len(stack.llm.calls("classification"))
        job_id = (await stack.submit()).json()["job_id"]
        for _ in range(100):
            async with stack.service.db.session() as session:
                job = await session.get(Job, uuid.UUID(job_id))
            if job is not None and "rule" in job.checkpoint:
                break
            await asyncio.sleep(0.05)
        await kill()  # crash: the answer stage never finishes, the message is never acked
        stack.llm.latency["answer"] = 0.0
        await start_worker(exits, stack.common, stack.settings, stack.service.http, stack.image_settings)
        result = await stack.result(job_id)
    assert result["status"] == "completed"
    assert len(stack.llm.calls("classification")) - before == 1


async def test_user_deleted_erases_scan_data(make_stack: StackFactory) -> None:
    stack = await make_stack()
    job_id = (await stack.submit("생수병", headers={"X-Idempotency-Key": "erase-me"})).json()["job_id"]
    await stack.result(job_id)
    runtime = ServiceRuntime("scan", "scan", stack.common)
    try:
        (subscription,) = consumers.build(runtime, stack.settings)
        event = envelope(UserDeleted(user_id=stack.user_id, deleted_at=utcnow()), "my")
        await subscription.handler(event)
        await subscription.handler(event)
    finally:
        await runtime.close()
    async with stack.service.db.session() as session:
        assert (await session.execute(select(Job).where(Job.user_id == stack.user_id))).first() is None
        assert (
            await session.execute(select(IdempotencyKey).where(IdempotencyKey.user_id == stack.user_id))
        ).first() is None
        assert (
            await session.execute(select(ClaimedCharacter).where(ClaimedCharacter.user_id == stack.user_id))
        ).first() is None
    assert await stack.service.events.read(job_id) == []
    assert await stack.service.events.owner(job_id) is None  # the copy of the owner goes too
    response = await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=stack.headers)
    assert response.status_code == 404


async def test_duplicate_deliveries_finish_once(make_stack: StackFactory) -> None:
    """Two workers on the same job (a re-enqueue racing the first delivery): one result, never reopened."""
    stack = await make_stack(model=True, worker=False)
    stack.llm.latency["answer"] = 0.3
    job_id = (await stack.submit()).json()["job_id"]
    pipeline = stack.service.pipeline
    await asyncio.gather(pipeline.run(job_id, 1), pipeline.run(job_id, 1))
    await pipeline.run(job_id, 2)  # a late redelivery of a finished job only makes sure `done` exists
    async with stack.service.db.session() as session:
        job = await session.get(Job, uuid.UUID(job_id))
    assert job is not None
    assert job.status == "completed"
    response = await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=stack.headers)
    assert response.status_code == 200
    _, frames = await stack.stream(job_id)
    assert frames[-1]["event"] == "done"
