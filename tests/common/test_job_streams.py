"""The shared job stream (services.common.jobs) with the replay policy of a token-streaming job.

Scan replays everything; a chat job streams ``token`` events, and a fresh connection to it gets the
stage events, one ``token_recovery`` frame and then the live events after it (docs/api.md, SSE).
Both are the same ``JobStreamResponse``; only the ``replay`` policy differs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header
from fastapi.responses import Response

from services.common.config import CommonSettings
from services.common.jobs import (
    Frame,
    JobEventLog,
    JobStreamResponse,
    MemoryJobEventLog,
    RedisJobEventLog,
    create_job_log,
    event_data,
    parse_last_event_id,
    replay_all,
    snapshot_tokens,
)
from tests.support.clients import app_client
from tests.support.events import eventually
from tests.support.sse import parse_sse


@pytest.fixture
async def log(common_settings: CommonSettings) -> AsyncIterator[JobEventLog]:
    events = create_job_log(common_settings, f"streamtest-{uuid.uuid4().hex[:8]}", 60)
    yield events
    await events.close()


@pytest.fixture
async def client(log: JobEventLog) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.get("/jobs/{job_id}/events")
    async def events(
        job_id: str, policy: str, last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None
    ) -> Response:
        replay = snapshot_tokens if policy == "tokens" else replay_all
        return JobStreamResponse(log, job_id, parse_last_event_id(last_event_id), replay=replay, max_seconds=10)

    async with app_client(app) as c:
        yield c


async def stage(log: JobEventLog, job: str, name: str, status: str, progress: int) -> int:
    return await log.append(job, name, event_data(job, name, status, progress))


async def token(log: JobEventLog, job: str, text: str) -> int:
    return await log.append(job, "token", event_data(job, "token", "streaming", 80, content=text))


async def started_answer(log: JobEventLog) -> str:
    """A job that has stored ``queued``, ``intent`` and two tokens (seqs 1–4)."""
    job = str(uuid.uuid4())
    await stage(log, job, "queued", "completed", 0)
    await stage(log, job, "intent", "completed", 10)
    await token(log, job, "페트병은 ")
    await token(log, job, "헹궈서 ")
    return job


async def finish(log: JobEventLog, job: str) -> None:
    await token(log, job, "버려요.")
    await log.append(job, "done", event_data(job, "done", "completed", 100, {"answer": "페트병은 헹궈서 버려요."}))


def summary(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["event"], f["id"]) for f in frames[1:]]


async def test_a_fresh_connection_to_a_running_job_gets_a_token_snapshot_then_live_events(
    client: httpx.AsyncClient, log: JobEventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await started_answer(log)
    reads: list[int] = []
    read = log.read

    async def counted_read(job_id: str, after: int = 0) -> list[Frame]:
        frames = await read(job_id, after)
        reads.append(len(frames))
        return frames

    monkeypatch.setattr(log, "read", counted_read)

    async def finish_once_the_backlog_was_read() -> bool:
        if not reads:
            return False
        await finish(log, job)  # live: produced after the connection took its snapshot
        return True

    response, _ = await asyncio.gather(
        client.get(f"/jobs/{job}/events", params={"policy": "tokens"}), eventually(finish_once_the_backlog_was_read)
    )
    assert reads[0] == 4
    frames = parse_sse(response.text)
    assert frames[0] == {"retry": "3000"}
    assert summary(frames) == [("queued", "1"), ("intent", "2"), ("token_recovery", "4"), ("token", "5"), ("done", "6")]
    recovery = frames[3]["data"]
    assert recovery["accumulated"] == "페트병은 헹궈서 "
    assert (recovery["last_seq"], recovery["seq"], recovery["completed"]) == (4, 4, False)
    assert (recovery["stage"], recovery["status"], recovery["job_id"]) == ("token_recovery", "snapshot", job)
    assert recovery["progress"] == 80
    assert frames[4]["data"]["content"] == "버려요."  # the text after the snapshot, exactly once


async def test_a_fresh_connection_to_a_finished_job_gets_stages_and_done_only(
    client: httpx.AsyncClient, log: JobEventLog
) -> None:
    job = await started_answer(log)
    await finish(log, job)
    frames = parse_sse((await client.get(f"/jobs/{job}/events", params={"policy": "tokens"})).text)
    assert summary(frames) == [("queued", "1"), ("intent", "2"), ("done", "6")]


async def test_a_resumed_connection_replays_every_event_after_its_id(
    client: httpx.AsyncClient, log: JobEventLog
) -> None:
    job = await started_answer(log)
    await finish(log, job)
    for policy in ("tokens", "all"):
        response = await client.get(f"/jobs/{job}/events", params={"policy": policy}, headers={"Last-Event-ID": "3"})
        assert summary(parse_sse(response.text)) == [("token", "4"), ("token", "5"), ("done", "6")]
    everything = await client.get(f"/jobs/{job}/events", params={"policy": "all"})
    assert [e for e, _ in summary(parse_sse(everything.text))] == ["queued", "intent", *["token"] * 3, "done"]


async def test_the_owner_is_stored_with_the_first_event_and_goes_with_the_log(log: JobEventLog) -> None:
    job, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert await log.owner_and_last(job) == (None, None)
    await log.append(job, "queued", event_data(job, "queued", "completed", 0), owner="user-a")
    await stage(log, job, "vision", "started", 10)
    owner, last = await log.owner_and_last(job)
    assert owner == "user-a"
    assert last is not None
    assert (last.seq, last.event) == (2, "vision")
    # Only a first event stores an owner (a later append cannot claim a job), and only once.
    await log.append(other, "vision", event_data(other, "vision", "started", 10), owner="user-b")
    assert await log.owner(other) is None
    await log.append(job, "queued", event_data(job, "queued", "completed", 0), owner="user-b")
    assert await log.owner(job) == "user-a"
    if isinstance(log, RedisJobEventLog):  # the owner expires with the log
        ttl = await log.client.pttl(f"{log.prefix}{job}:owner")
        assert 0 < ttl <= 60_000
    await log.delete(job)
    assert await log.owner_and_last(job) == (None, None)


async def test_an_in_process_owner_is_gone_after_the_retention() -> None:
    log = MemoryJobEventLog(retention_seconds=0.05)
    job = str(uuid.uuid4())
    await log.append(job, "queued", event_data(job, "queued", "completed", 0), owner="user-a")
    assert await log.owner(job) == "user-a"
    await asyncio.sleep(0.1)  # not pruned yet (every 1000 appends), but past the retention
    assert await log.owner_and_last(job) == (None, None)


async def test_a_streams_opening_read_gives_owner_backlog_and_last_event(log: JobEventLog) -> None:
    job = str(uuid.uuid4())
    assert await log.owner_and_backlog(job) == (None, [], None)
    await log.append(job, "queued", event_data(job, "queued", "completed", 0), owner="user-a")
    await stage(log, job, "vision", "started", 10)
    await stage(log, job, "vision", "completed", 40)
    owner, backlog, last = await log.owner_and_backlog(job, 1)
    assert owner == "user-a"
    assert [(f.seq, f.event) for f in backlog] == [(2, "vision"), (3, "vision")]
    assert backlog == await log.read(job, 1)  # the same frames as the separate read
    assert last == backlog[-1]
    # Resumed at or past the end: nothing to replay, and the last event still answers "is it over?".
    owner, backlog, last = await log.owner_and_backlog(job, 3)
    assert (owner, backlog) == ("user-a", [])
    assert last is not None
    assert (last.seq, last.event) == (3, "vision")


async def test_one_append_of_several_events_reaches_a_subscriber_in_order(log: JobEventLog) -> None:
    job = str(uuid.uuid4())
    sub = await log.attach(job)
    raw: list[str] = []
    if isinstance(log, RedisJobEventLog):  # what crosses Redis: one message per append, a line per event
        pubsub = log.client.pubsub()
        await pubsub.subscribe(log.channel)
        confirmed = await pubsub.get_message(timeout=5.0)  # subscribed before the append
        assert confirmed is not None
        assert confirmed["type"] == "subscribe"
    try:
        await log.append_many(
            job,
            [(name, event_data(job, name, status, progress, message="줄\n바꿈"))
             for name, status, progress in (("queued", "completed", 0), ("vision", "started", 0), ("vision", "completed", 40))],
        )  # fmt: skip

        async def all_arrived() -> bool:
            return len(sub.frames) == 3

        await eventually(all_arrived)
        assert [(f.seq, f.event) for f in sub.frames] == [(1, "queued"), (2, "vision"), (3, "vision")]
        assert list(sub.frames) == await log.read(job)  # the data as stored (an escaped newline stays one line)
        if isinstance(log, RedisJobEventLog):
            while (message := await pubsub.get_message(timeout=1.0)) is not None:
                raw.append(str(message["data"]))
            assert [len(m.split("\n")) for m in raw if m.startswith(job)] == [3]
    finally:
        log.hub.remove(sub)
        if isinstance(log, RedisJobEventLog):
            await pubsub.aclose()
