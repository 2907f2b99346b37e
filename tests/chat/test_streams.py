"""docs/api.md, SSE (chat): a fresh connection mid-answer gets one ``token_recovery`` snapshot, a resumed
one every event after its ``Last-Event-ID`` — no token lost or repeated either way —, a finished job
gets its stage events and ``done`` only; ownership; keepalive and the connection cap."""

from __future__ import annotations

import asyncio
import uuid

from tests.chat.conftest import Stack, StackFactory
from tests.chat.doubles import answer_for, client_view, frames_of
from tests.support.sse import parse_sse
from tests.support.tokens import auth_headers


async def tokens_stored(stack: Stack, job_id: str, at_least: int) -> int:
    """Wait until the job has streamed ``at_least`` tokens; returns the last stored seq."""
    for _ in range(400):
        frames = await stack.service.jobs.events.read(job_id)
        if sum(f.event == "token" for f in frames) >= at_least:
            return frames[-1].seq
        await asyncio.sleep(0.01)
    raise AssertionError("the answer did not start")


async def test_fresh_connection_mid_answer_gets_a_snapshot_then_live_tokens(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    message = "[느림] 중간에 들어온 연결"
    job_id = await stack.ask(chat_id, message)
    await tokens_stored(stack, job_id, 3)
    _, events = await stack.stream(job_id)
    (snapshot,) = frames_of(events, "token_recovery")
    point = int(snapshot["id"])
    assert snapshot["data"]["accumulated"]  # three tokens or more were already streamed
    before = [f for f in events if int(f["id"]) <= point and f["event"] != "token_recovery"]
    assert all(f["event"] != "token" for f in before)  # stage events only up to the snapshot point
    assert [f["event"] for f in before][:3] == ["queued", "intent", "intent"]
    after = events[events.index(snapshot) + 1 :]
    assert all(int(f["id"]) > point for f in after)
    assert client_view(events) == answer_for(message)  # nothing lost, nothing twice
    assert events[-1]["event"] == "done"


async def test_resume_with_last_event_id_mid_answer(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    message = "[느림] 끊겼다가 이어 받기"
    job_id = await stack.ask(chat_id, message)
    cut = await tokens_stored(stack, job_id, 4)
    stored = await stack.service.jobs.events.read(job_id)
    seen_text = "".join(__import__("json").loads(f.data).get("content", "") for f in stored if f.event == "token")
    _, events = await stack.stream(job_id, str(cut))
    assert not frames_of(events, "token_recovery")  # a resumed connection never gets a snapshot
    assert [int(f["id"]) for f in events] == list(range(cut + 1, cut + 1 + len(events)))
    assert seen_text + client_view(events) == answer_for(message)
    assert events[-1]["event"] == "done"


async def test_finished_job_replays_stages_and_done_without_snapshot(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id)
    await stack.stream(job_id)
    _, fresh = await stack.stream(job_id)
    assert not frames_of(fresh, "token_recovery")
    assert not frames_of(fresh, "token")
    assert [f["event"] for f in fresh] == ["queued", "intent", "intent", "answer", "answer", "done"]
    done_seq = int(fresh[-1]["id"])
    _, resumed = await stack.stream(job_id, "2")
    assert [int(f["id"]) for f in resumed] == list(range(3, done_seq + 1))  # tokens included
    _, after_done = await stack.stream(job_id, str(done_seq))
    assert [(f["event"], int(f["id"])) for f in after_done] == [("done", done_seq)]  # done always ends it
    _, garbage = await stack.stream(job_id, "not-a-number")
    assert [f["event"] for f in garbage] == [f["event"] for f in fresh]  # unparsable → fresh


async def test_someone_elses_or_unknown_job_is_404_before_any_stream(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id)
    for target, headers in (
        (job_id, auth_headers(stack.common)),
        (str(uuid.uuid4()), stack.headers),
        ("not-a-job", stack.headers),
    ):
        response, _ = await stack.stream(target, headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == "JOB_NOT_FOUND"
    no_auth = await stack.chat.get(f"/api/v1/chat/{job_id}/events")
    assert no_auth.status_code == 401


async def test_keepalive_and_connection_cap(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, sse_keepalive_seconds=0.2, sse_max_seconds=0.7)
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id)
    response = await stack.chat.get(
        f"/api/v1/chat/{job_id}/events", headers={**stack.headers, "Origin": "https://app.eco2.test"}
    )
    assert response.headers["access-control-allow-origin"] == "https://app.eco2.test"
    frames = parse_sse(response.text)[1:]
    assert frames[0]["event"] == "queued"
    keepalives = frames_of(frames, "keepalive")
    assert len(keepalives) >= 2
    assert all("id" not in f and set(f["data"]) == {"ts"} for f in keepalives)
    assert frames[-1]["event"] == "error"
    assert frames[-1]["data"]["error"] == "timeout"
