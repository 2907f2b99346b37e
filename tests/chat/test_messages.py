"""docs/api.md, chat: sending a message, and the stream of its job end to end (SSE events, chat):
the checks before the 202, the user message stored at submission, named events with seq/progress,
``done`` carrying the persistence ids of the stored messages, history as context, per-chat order,
the rate limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from services.chat.models import Job
from tests.chat.conftest import StackFactory
from tests.chat.doubles import answer_for, client_view, frames_of


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_send_stream_and_done_with_persistence(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    response = await stack.send(chat_id, "  페트병 어떻게 버려요?  ")
    assert response.status_code == 202, response.text
    body = response.json()
    job_id = body["job_id"]
    assert body == {"job_id": job_id, "stream_url": f"/api/v1/chat/{job_id}/events", "status": "queued"}

    stream, events = await stack.stream(job_id)
    assert stream.status_code == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert stream.text.startswith("retry: 3000\n\n")
    names = [f["event"] for f in events]
    assert names[0] == "queued"
    assert names[-1] == "done"
    # Every frame but a keepalive (sent when a loaded machine stalls the job past 15 s) has an id.
    assert all("event" in f and ("id" in f or f["event"] == "keepalive") for f in events), events
    events = [f for f in events if f["event"] != "keepalive"]
    if any(f["event"] in ("token", "token_recovery") for f in events):
        # Opened while the job ran: snapshot and live tokens rebuild the answer exactly once.
        assert client_view(events) == answer_for("페트병 어떻게 버려요?")
    else:
        # The job was already over when the stream opened (the worker can beat the client): stage
        # events and done only, done carrying the answer (docs/api.md, SSE step 6).
        assert events[-1]["data"]["result"]["answer"] == answer_for("페트병 어떻게 버려요?")
    # The whole log, in order (a resume from 0 replays every event, tokens included).
    _, events = await stack.stream(job_id, "0")
    seqs = [int(f["id"]) for f in events]
    assert seqs == list(range(1, len(events) + 1))
    assert all(f["data"]["seq"] == int(f["id"]) and f["data"]["job_id"] == job_id for f in events)
    progress = [f["data"]["progress"] for f in events]
    assert progress == sorted(progress)
    assert progress[0] == 0
    assert progress[-1] == 100
    stages = [(f["event"], f["data"]["status"], f["data"]["progress"]) for f in events if f["event"] != "token"]
    assert stages == [
        ("queued", "completed", 0),
        ("intent", "started", 10),
        ("intent", "completed", 10),
        ("answer", "started", 80),
        ("answer", "completed", 80),
        ("done", "completed", 100),
    ]
    tokens = frames_of(events, "token")
    assert tokens
    assert all(t["data"]["status"] == "streaming" and t["data"]["stage"] == "token" for t in tokens)
    text = "".join(t["data"]["content"] for t in tokens)
    assert text == answer_for("페트병 어떻게 버려요?")  # the message was trimmed

    done = events[-1]["data"]
    assert done["message"] == "답변을 준비했어요."
    result = done["result"]
    assert result["intent"] == "waste"
    assert result["answer"] == text
    persistence = result["persistence"]
    history = await stack.history(chat_id)
    question, answer = history["messages"]
    assert persistence == {
        "conversation_id": chat_id,
        "user_id": str(stack.user_id),
        "user_message": question["id"],
        "user_message_created_at": question["created_at"],
        "assistant_message": answer["id"],
        "assistant_message_created_at": answer["created_at"],
    }
    assert (question["role"], question["content"]) == ("user", "페트병 어떻게 버려요?")
    assert (answer["role"], answer["content"], answer["intent"]) == ("assistant", text, "waste")
    assert parse(answer["created_at"]) > parse(question["created_at"])
    summary = (await stack.chat.get("/api/v1/chat?limit=1", headers=stack.headers)).json()["chats"][0]
    assert summary["message_count"] == 2
    assert summary["preview"] == text[:100]
    assert stack.assistant.context(job_id).model == "gpt-5.2"


async def test_user_message_is_stored_before_the_202(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    chat_id = await stack.create_chat()
    image_url = await stack.uploaded()
    job_id = await stack.ask(chat_id, "이 사진 속 물건은요?", image_url=image_url)
    history = await stack.history(chat_id, limit=5)
    (stored,) = history["messages"]
    assert (stored["role"], stored["content"], stored["image_url"]) == ("user", "이 사진 속 물건은요?", image_url)
    assert history["title"] == "이 사진 속 물건은요?"
    # The stream can be opened at once: the queued event is already there.
    log = await stack.service.jobs.events.read(job_id)
    assert [f.event for f in log] == ["queued"]


async def test_submission_checks(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    chat_id = await stack.create_chat()
    url = f"/api/v1/chat/{chat_id}/messages"

    async def post(body: dict[str, Any]) -> tuple[int, Any]:
        response = await stack.chat.post(url, json=body, headers=stack.headers)
        return response.status_code, response.json()

    for blank in ({"message": "   "}, {"message": ""}, {}, {"message": None}):
        status, body = await post(blank)
        assert (status, body["code"]) == (400, "MESSAGE_REQUIRED"), blank
    assert (await post({"message": "가" * 2001}))[0] == 422
    assert (await post({"message": "가" * 2000 + "   "}))[0] == 202  # trimmed before the length check
    for model in ("gpt-5.2", "gemini-3-flash-preview", None):
        assert (await post({"message": "모델", "model": model}))[0] == 202, model
    status, body = await post({"message": "모델", "model": "gpt-2"})
    assert (status, body["code"]) == (400, "UNSUPPORTED_MODEL")
    for location in ({"latitude": 91, "longitude": 0}, {"latitude": 0, "longitude": -181}, {"latitude": 1}):
        assert (await post({"message": "위치", "user_location": location}))[0] == 422, location
    for image_url in ("https://evil.example.com/scan/x.png", "http://cdn.eco2.test/chat/x.png", "not a url"):
        status, body = await post({"message": "사진", "image_url": image_url})
        assert (status, body["code"]) == (400, "IMAGE_URL_NOT_ALLOWED"), image_url
    status, body = await post({"message": "줄바꿈\n은 괜찮아요", "unknown_field": 1})
    assert status == 202


async def test_rate_limit_answers_429_with_retry_after(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, rate_per_window=2)
    chat_id = await stack.create_chat()
    assert (await stack.send(chat_id, "하나")).status_code == 202
    assert (await stack.send(chat_id, "둘")).status_code == 202
    refused = await stack.send(chat_id, "셋")
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await stack.history(chat_id))["messages"][-1]["content"] == "둘"  # nothing stored for the refused one
    # A refused request (bad input) costs nothing.
    other = await make_stack(worker=False, rate_per_window=1)
    other_chat = await other.create_chat()
    assert (await other.send(other_chat, "사진", image_url="https://evil.example.com/x.png")).status_code == 400
    assert (await other.send(other_chat, "첫 질문")).status_code == 202


async def test_earlier_turns_are_the_assistants_context(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    first = await stack.ask(chat_id, "페트병은요?")
    await stack.stream(first)
    second = await stack.ask(chat_id, "그럼 뚜껑은요?")
    await stack.stream(second)
    ctx = stack.assistant.context(second)
    assert ctx.message == "그럼 뚜껑은요?"
    assert [(t.role, t.content, t.intent) for t in ctx.history] == [
        ("user", "페트병은요?", None),
        ("assistant", answer_for("페트병은요?"), "waste"),
    ]
    assert ctx.chat_id == uuid.UUID(chat_id)
    assert ctx.user_id == stack.user_id
    assert ctx.job_id == uuid.UUID(second)


async def test_jobs_of_one_chat_run_one_at_a_time_in_order(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    other_chat = await stack.create_chat()
    messages = [f"[느림] 질문 {i}" for i in range(3)]
    jobs = [await stack.ask(chat_id, m) for m in messages]
    elsewhere = await stack.ask(other_chat, "[느림] 다른 방")
    results = await asyncio.gather(*(stack.stream(j) for j in [*jobs, elsewhere]))
    assert all(frames[-1]["data"]["status"] == "completed" for _, frames in results)
    in_chat = [m for m in stack.assistant.started if m in messages]
    assert in_chat == messages
    contents = [m["content"] for m in (await stack.history(chat_id))["messages"]]
    # The questions were all stored at submission; the answers follow in the same order.
    assert contents == [*messages, *(answer_for(m) for m in messages)]
    done_at = {job_id: parse(frames[-1]["data"]["ts"]) for job_id, (_, frames) in zip(jobs, results[:3], strict=True)}
    starts = []
    for job_id in jobs:
        frames = await stack.service.jobs.events.read(job_id)
        intent = next(f for f in frames if f.event == "intent")
        starts.append(parse(json.loads(intent.data)["ts"]))
    assert starts[1] >= done_at[jobs[0]]
    assert starts[2] >= done_at[jobs[1]]
    async with stack.service.jobs.db.session() as session:
        statuses = (await session.execute(select(Job.status).where(Job.chat_id == uuid.UUID(chat_id)))).scalars().all()
    assert set(statuses) == {"completed"}


async def test_unknown_stage_names_are_refused(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    _, events = await stack.stream(await stack.ask(chat_id, "[낯선단계] 질문"))
    assert "not_a_stage" not in [f["event"] for f in events]
    done = events[-1]["data"]
    assert (done["status"], done["result"]["error"]["code"]) == ("failed", "INTERNAL_ERROR")


async def test_configured_model_ids_are_accepted_too(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, extra_models=["local-llama"])
    chat_id = await stack.create_chat()
    assert (await stack.send(chat_id, "모델", model="local-llama")).status_code == 202
    refused = await stack.send(chat_id, "모델", model="local-mistral")
    assert (refused.status_code, refused.json()["code"]) == (400, "UNSUPPORTED_MODEL")
