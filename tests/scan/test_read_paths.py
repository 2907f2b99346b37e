"""Stream open and result read ownership from the job's event log (the owner written with ``queued``)
and fall back to the database when the log cannot answer: the same answers either way, never
another user's job (docs/api.md, scan: result; SSE)."""

from __future__ import annotations

import uuid

from services.common.jobs import MemoryJobEventLog, RedisJobEventLog
from tests.scan.conftest import Stack, StackFactory
from tests.support.tokens import auth_headers


async def forget_owner(stack: Stack, job_id: str) -> None:
    """The log without its owner, as after a log re-created by a late append following a Redis loss."""
    events = stack.service.events
    if isinstance(events, RedisJobEventLog):
        await events.client.delete(f"{events.prefix}{job_id}:owner")
    else:
        assert isinstance(events, MemoryJobEventLog)
        events._owners.pop(job_id)


async def drop_done(stack: Stack, job_id: str) -> None:
    """The log without its ``done`` event, as after a crash between storing the result and appending it."""
    events = stack.service.events
    done = [frame for frame in await events.read(job_id) if frame.event == "done"]
    assert done
    if isinstance(events, RedisJobEventLog):
        await events.client.xdel(f"{events.prefix}{job_id}", *(f"{frame.seq}-1" for frame in done))
    else:
        assert isinstance(events, MemoryJobEventLog)
        events._logs[job_id] = [frame for frame in events._logs[job_id] if frame.event != "done"]


async def answers(stack: Stack, job_id: str, headers: dict[str, str]) -> tuple[tuple[int, bytes], list[str]]:
    result = await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=headers)
    stream = await stack.scan.get(f"/api/v1/scan/{job_id}/events", headers=headers)
    events = [line[len("event: ") :] for line in stream.text.splitlines() if line.startswith("event: ")]
    return (result.status_code, result.content), events


async def test_the_log_answers_as_the_database_does(make_stack: StackFactory) -> None:
    stack = await make_stack()
    job_id = (await stack.submit("생수병")).json()["job_id"]
    await stack.result(job_id)
    owner, last = await stack.service.events.owner_and_last(job_id)
    assert owner == str(stack.user_id)
    assert last is not None
    assert last.event == "done"
    from_log = await answers(stack, job_id, stack.headers)
    assert from_log[0][0] == 200
    assert from_log[1][-1] == "done"

    await forget_owner(stack, job_id)  # now the database answers
    assert await stack.service.events.owner(job_id) is None
    from_db = await answers(stack, job_id, stack.headers)
    assert from_db == from_log  # the same result bytes, the same frames

    await stack.service.events.delete(job_id)  # the whole log gone: still the stored result, still `done`
    result, frames = await answers(stack, job_id, stack.headers)
    assert result == from_log[0]
    assert frames[-1] == "done"


async def test_another_user_gets_404_whichever_side_answers(make_stack: StackFactory) -> None:
    stack = await make_stack()
    job_id = (await stack.submit("생수병")).json()["job_id"]
    await stack.result(job_id)
    stranger = auth_headers(stack.common)
    for step in ("owner in the log", "no owner in the log", "no log"):
        if step == "no owner in the log":
            await forget_owner(stack, job_id)
        elif step == "no log":
            await stack.service.events.delete(job_id)
        for suffix in ("result", "events"):
            response = await stack.scan.get(f"/api/v1/scan/{job_id}/{suffix}", headers=stranger)
            assert (response.status_code, response.json()["code"]) == (404, "JOB_NOT_FOUND"), step
    # A job id only ever in the log (its row never committed) is not a job either, for anyone else.
    ghost = str(uuid.uuid4())
    await stack.service.events.append(ghost, "queued", {"job_id": ghost}, owner=str(stack.user_id))
    for suffix in ("result", "events"):
        response = await stack.scan.get(f"/api/v1/scan/{ghost}/{suffix}", headers=stranger)
        assert response.status_code == 404


async def test_a_running_job_is_not_answered_from_the_log(make_stack: StackFactory) -> None:
    """The log holds no result before ``done``: the 202 view comes from the database."""
    stack = await make_stack(worker=False)
    job_id = (await stack.submit("생수병")).json()["job_id"]
    assert await stack.service.events.owner(job_id) == str(stack.user_id)
    response = await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=stack.headers)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["current_stage"]) == ("processing", "queued")


async def test_a_finished_job_whose_log_lacks_done_still_ends_its_stream(make_stack: StackFactory) -> None:
    """Owner in the log but no ``done`` (crash after the result was stored): the stream asks the database
    once it idles for a keepalive period, appends ``done`` and ends with it; the result comes from the database."""
    stack = await make_stack(sse_keepalive_seconds=0.2, sse_max_seconds=5)
    job_id = (await stack.submit("생수병")).json()["job_id"]
    stored = await stack.result(job_id)
    await drop_done(stack, job_id)
    response = await stack.scan.get(f"/api/v1/scan/{job_id}/result", headers=stack.headers)
    assert (response.status_code, response.json()) == (200, stored)
    _, frames = await stack.stream(job_id)
    assert frames[-1]["event"] == "done"
    assert [f.get("event") for f in frames].count("keepalive") <= 1  # asked after one idle keepalive period
    assert frames[-1]["data"]["result"] == stored
    # A client that saw `done` and reconnects with its id is answered at once from the log's `done`.
    _, again = await stack.stream(job_id, frames[-1]["id"])
    assert [(f["event"], f["id"]) for f in again[1:]] == [("done", frames[-1]["id"])]
