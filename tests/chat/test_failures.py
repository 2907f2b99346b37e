"""Jobs that cannot answer (docs/api.md, chat: sending a message; SSE events): the assistant missing or
unavailable (LLM_UNAVAILABLE), the 240 s deadline (CHAT_TIMEOUT), no worker at all, a worker killed
mid-answer (resumed without repeating a token, or failed), the location input, account deletion."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from services.chat import consumers
from services.chat.config import ChatSettings
from services.chat.models import Chat, Job, Message
from services.chat.runner import MissingAssistant, load_assistant
from services.common.clock import utcnow
from services.common.config import CommonSettings
from services.common.domain_events import UserDeleted
from services.common.runtime import ServiceRuntime
from tests.chat.conftest import Stack, StackFactory
from tests.chat.doubles import ScriptedAssistant, answer_for, client_view, frames_of
from tests.conftest import ClockControl
from tests.support.events import envelope
from tests.support.tokens import auth_headers

HANGUL = range(0xAC00, 0xD7A4)


def korean(text: str) -> bool:
    return any(ord(c) in HANGUL for c in text)


async def stored_messages(stack: Stack, chat_id: str) -> list[Message]:
    async with stack.service.jobs.db.session() as session:
        rows = await session.execute(select(Message).where(Message.chat_id == uuid.UUID(chat_id)))
        return list(rows.scalars())


async def assert_failed(stack: Stack, chat_id: str, events: list[dict], code: str) -> dict:
    done = events[-1]
    assert done["event"] == "done"
    data = done["data"]
    assert (data["status"], data["progress"]) == ("failed", 100)
    assert data["result"]["error"]["code"] == code
    assert korean(data["message"])
    assert data["result"]["error"]["message"] == data["message"]
    assert [m.role for m in await stored_messages(stack, chat_id)] == ["user"]  # no assistant message
    return dict(data)


async def test_assistant_unavailable_ends_failed(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    _, events = await stack.stream(await stack.ask(chat_id, "[불가] 모델이 없어요"))
    await assert_failed(stack, chat_id, events, "LLM_UNAVAILABLE")


async def test_a_missing_assistant_module_fails_jobs_instead_of_the_worker(
    make_stack: StackFactory, chat_common: CommonSettings
) -> None:
    settings = ChatSettings(environment="test", assistant="services.chat.no_such_agent:build_assistant")
    missing = load_assistant(settings, chat_common)
    assert isinstance(missing, MissingAssistant)
    assert "no_such_agent" in missing.reason
    stack = await make_stack(worker=False)
    await stack.start_worker(missing)
    chat_id = await stack.create_chat()
    _, events = await stack.stream(await stack.ask(chat_id))
    await assert_failed(stack, chat_id, events, "LLM_UNAVAILABLE")
    loaded = load_assistant(
        ChatSettings(environment="test", assistant="tests.chat.doubles:build_scripted"), chat_common
    )
    assert isinstance(loaded, ScriptedAssistant)  # the same dotted-path loading finds a real one


async def test_a_bug_in_the_assistant_ends_failed(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    _, events = await stack.stream(await stack.ask(chat_id, "[오류] 버그"))
    await assert_failed(stack, chat_id, events, "INTERNAL_ERROR")


async def test_deadline_ends_the_job_with_chat_timeout(make_stack: StackFactory) -> None:
    stack = await make_stack(job_deadline_seconds=0.8)
    chat_id = await stack.create_chat()
    _, events = await stack.stream(await stack.ask(chat_id, "[멈춤] 끝나지 않는 답"))
    stages = [(f["event"], f["data"]["status"]) for f in events if f["event"] not in ("token", "token_recovery")]
    assert stages[-2:] == [("answer", "failed"), ("done", "failed")]
    await assert_failed(stack, chat_id, events, "CHAT_TIMEOUT")
    assert ChatSettings().job_deadline_seconds == 240  # the contract's limit is the default


async def test_no_worker_still_ends_within_the_deadline(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, job_deadline_seconds=0.2)
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id)
    await asyncio.sleep(0.3)
    await stack.service.jobs.sweep()  # what every chat worker does every few seconds
    _, events = await stack.stream(job_id)
    await assert_failed(stack, chat_id, events, "CHAT_TIMEOUT")


async def test_no_worker_at_all_the_stream_still_ends_with_done(make_stack: StackFactory, clock: ClockControl) -> None:
    stack = await make_stack(worker=False)
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id)
    clock.advance(240 + 6)  # past the deadline and the grace: no worker ever took it
    _, events = await stack.stream(job_id)
    await assert_failed(stack, chat_id, events, "CHAT_TIMEOUT")


async def test_killed_worker_job_is_resumed_without_repeating_tokens(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, lease_seconds=0.6)
    chat_id = await stack.create_chat()
    message = "[느림] 일하던 워커가 죽었어요"
    first = ScriptedAssistant(delay=0.05)
    kill = await stack.start_worker(first)
    job_id = await stack.ask(chat_id, message)
    listener = asyncio.create_task(stack.stream(job_id))  # a client watching the whole time
    for _ in range(400):
        if sum(f.event == "token" for f in await stack.service.jobs.events.read(job_id)) >= 4:
            break
        await asyncio.sleep(0.01)
    await kill()  # the worker dies mid-answer; its lease is not renewed any more
    second = ScriptedAssistant(delay=0.0)  # deterministic: the same answer again
    await stack.start_worker(second)
    _, events = await listener
    assert events[-1]["data"]["status"] == "completed"
    assert client_view(events) == answer_for(message)  # each character once on the open connection
    _, fresh = await stack.stream(job_id)
    stages = [(f["event"], f["data"]["status"]) for f in fresh if f["event"] not in ("token", "done")]
    assert stages.count(("intent", "started")) == 1  # stage events of the first run are not repeated
    stored = await stored_messages(stack, chat_id)
    assert [m.content for m in stored if m.role == "assistant"] == [answer_for(message)]
    assert any(str(c.job_id) == job_id for c in second.contexts)
    async with stack.service.jobs.db.session() as session:
        job = await session.get(Job, uuid.UUID(job_id))
    assert job is not None
    assert job.attempts == 2


async def test_resumed_answer_that_contradicts_the_streamed_text_ends_failed(make_stack: StackFactory) -> None:
    """A model answers differently the second time: what the client already appended cannot be taken back."""
    stack = await make_stack(worker=False, lease_seconds=0.6)
    chat_id = await stack.create_chat()
    kill = await stack.start_worker(ScriptedAssistant(delay=0.05))
    job_id = await stack.ask(chat_id, "[느림] 완전히 다른 답")
    for _ in range(400):
        if sum(f.event == "token" for f in await stack.service.jobs.events.read(job_id)) >= 4:
            break
        await asyncio.sleep(0.01)
    await kill()

    class Rewriter(ScriptedAssistant):
        async def answer(self, ctx, emit):  # type: ignore[no-untyped-def]
            await emit.token("전혀 다른 시작")
            return await super().answer(ctx, emit)

    await stack.start_worker(Rewriter(delay=0.0))
    _, events = await stack.stream(job_id)
    await assert_failed(stack, chat_id, events, "INTERNAL_ERROR")


async def test_needs_input_then_location(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id, "[위치] 근처 재활용센터 어디야?")
    url = f"/api/v1/chat/{job_id}/input"
    for _ in range(400):
        if any(f.event == "needs_input" for f in await stack.service.jobs.events.read(job_id)):
            break
        await asyncio.sleep(0.01)
    for bad in ({"type": "location"}, {"type": "location", "data": {"latitude": 37.5}},
                {"type": "location", "data": {"latitude": 137.5, "longitude": 127.0}},
                {"type": "location", "data": {"latitude": "37", "longitude": 127.0}}):  # fmt: skip
        refused = await stack.chat.post(url, json=bad, headers=stack.headers)
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_INPUT"), bad
    assert (await stack.chat.post(url, json={"type": "teleport"}, headers=stack.headers)).status_code == 422
    stranger = await stack.chat.post(url, json={"type": "cancel"}, headers=auth_headers(stack.common))
    assert (stranger.status_code, stranger.json()["code"]) == (404, "JOB_NOT_FOUND")
    given = {"type": "location", "data": {"latitude": 37.5665, "longitude": 126.978}}
    accepted = await stack.chat.post(url, json=given, headers=stack.headers)
    assert accepted.status_code == 202
    assert accepted.json() == {"job_id": job_id, "status": "received"}
    again = await stack.chat.post(url, json=given, headers=stack.headers)
    assert (again.status_code, again.json()["code"]) == (409, "NOT_WAITING_FOR_INPUT")
    _, events = await stack.stream(job_id)
    (waiting,) = frames_of(events, "needs_input")
    assert waiting["data"]["status"] == "waiting"
    assert waiting["data"]["result"] == {"input_type": "location", "timeout_s": 30}
    assert korean(waiting["data"]["message"])
    assert events[-1]["data"]["result"]["answer"].startswith("위치: 37.5665,126.9780.")
    assert ChatSettings().input_timeout_seconds == 30


async def test_needs_input_cancel_and_timeout_continue_without_location(make_stack: StackFactory) -> None:
    stack = await make_stack(input_timeout_seconds=0.6)
    chat_id = await stack.create_chat()
    cancelled = await stack.ask(chat_id, "[위치] 취소할게요")
    for _ in range(400):
        if any(f.event == "needs_input" for f in await stack.service.jobs.events.read(cancelled)):
            break
        await asyncio.sleep(0.01)
    response = await stack.chat.post(f"/api/v1/chat/{cancelled}/input", json={"type": "cancel"}, headers=stack.headers)
    assert response.status_code == 202
    _, events = await stack.stream(cancelled)
    assert events[-1]["data"]["result"]["answer"].startswith("위치: 위치 없음.")
    timed_out = await stack.ask(chat_id, "[위치] 대답하지 않을게요")
    _, events = await stack.stream(timed_out)
    assert events[-1]["data"]["status"] == "completed"
    assert events[-1]["data"]["result"]["answer"].startswith("위치: 위치 없음.")
    late = await stack.chat.post(f"/api/v1/chat/{timed_out}/input", json={"type": "cancel"}, headers=stack.headers)
    assert (late.status_code, late.json()["code"]) == (409, "NOT_WAITING_FOR_INPUT")
    sent_location = await stack.ask(
        chat_id, "[위치] 위치를 보냈어요", user_location={"latitude": 35.1, "longitude": 129.0}
    )
    _, events = await stack.stream(sent_location)
    assert not frames_of(events, "needs_input")
    assert events[-1]["data"]["result"]["answer"].startswith("위치: 35.1000,129.0000.")


async def test_a_deleted_chats_running_job_finishes_hidden(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id, "[느림] 지우는 중")
    assert (await stack.chat.delete(f"/api/v1/chat/{chat_id}", headers=stack.headers)).status_code == 204
    _, events = await stack.stream(job_id)
    assert events[-1]["data"]["status"] == "completed"
    assert (await stack.chat.get(f"/api/v1/chat/{chat_id}", headers=stack.headers)).status_code == 404
    assert [m.role for m in await stored_messages(stack, chat_id)] == ["user", "assistant"]


async def test_user_deleted_erases_chats_messages_jobs_and_logs(make_stack: StackFactory) -> None:
    stack = await make_stack()
    chat_id = await stack.create_chat()
    job_id = await stack.ask(chat_id)
    await stack.stream(job_id)
    other = Stack(stack.common, stack.settings, stack.chat, stack.image, stack.app, stack.assistant, stack.exits)
    kept_chat = await other.create_chat()
    kept_job = await other.ask(kept_chat)
    await other.stream(kept_job)
    runtime = ServiceRuntime("chat", "chat", stack.common)
    try:
        (subscription,) = consumers.build(runtime, stack.settings)
        event = envelope(UserDeleted(user_id=stack.user_id, deleted_at=utcnow()), "my")
        await subscription.handler(event)
        await subscription.handler(event)  # at-least-once: a second delivery is a no-op
    finally:
        await runtime.close()
    async with stack.service.jobs.db.session() as session:
        for model in (Chat, Message, Job):
            count = await session.scalar(select(func.count()).select_from(model).where(model.user_id == stack.user_id))
            assert count == 0, model
        assert await session.scalar(select(func.count()).select_from(Message).where(Message.user_id == other.user_id))
    assert await stack.service.jobs.events.read(job_id) == []
    assert await stack.service.jobs.events.read(kept_job) != []
    response, _ = await stack.stream(job_id)
    assert response.status_code == 404
    listed = (await stack.chat.get("/api/v1/chat", headers=stack.headers)).json()
    assert listed["chats"] == []


async def test_killed_worker_past_the_deadline_ends_failed_with_its_open_stage(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, job_deadline_seconds=1.0, lease_seconds=5.0)
    chat_id = await stack.create_chat()
    kill = await stack.start_worker(ScriptedAssistant())
    job_id = await stack.ask(chat_id, "[멈춤] 워커가 죽고 시간도 지나요")
    for _ in range(400):
        if any(f.event == "answer" for f in await stack.service.jobs.events.read(job_id)):
            break
        await asyncio.sleep(0.01)
    await kill()
    await asyncio.sleep(1.1)
    await stack.service.jobs.sweep()  # what any other worker does every few seconds
    _, events = await stack.stream(job_id)
    stages = [(f["event"], f["data"]["status"]) for f in events if f["event"] != "token_recovery"]
    assert stages[-2:] == [("answer", "failed"), ("done", "failed")]
    await assert_failed(stack, chat_id, events, "CHAT_TIMEOUT")
