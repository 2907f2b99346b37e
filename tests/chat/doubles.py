"""A test double of the assistant (``services/chat/assistant.py``), used only in tests.

It answers from a script chosen by a keyword in the message, through the real ``Emitter`` the
runner hands it (so every stage, token and ``needs_input`` it sends becomes a real job event):

- default: ``intent`` → ``answer`` stages and the answer ``"<message>에 대한 답변입니다. …"`` in
  small token deltas;
- ``[위치]``: asks for the location when the message came without one, and says what it got;
- ``[느림]``: a pause between tokens (``delay`` seconds), for streams joined mid-answer;
- ``[멈춤]``: never finishes (deadline tests); ``[불가]``: raises ``AssistantUnavailable``;
- ``[오류]``: raises a bug; ``[낯선단계]``: emits a stage name the contract does not have.

Every context it was asked with is kept in ``contexts`` (history, location, model, image).
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.chat.assistant import Answer, AskContext, AssistantUnavailable, Emitter
from services.common.config import CommonSettings

ANSWER_SUFFIX = " 페트병은 내용물을 비우고 라벨을 떼어 투명 페트병 전용 수거함에 버려요. **이코**가 도와줄게요!"


def answer_for(message: str) -> str:
    return f"{message}에 대한 답변입니다.{ANSWER_SUFFIX}"


def chunks(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class ScriptedAssistant:
    def __init__(self, *, delay: float = 0.05, variant: str = "") -> None:
        self.delay = delay
        self.variant = variant  # appended to answers: a second "model" that answers differently
        self.contexts: list[AskContext] = []
        self.started: list[str] = []  # messages, in the order their jobs started
        self.closed = False

    async def answer(self, ctx: AskContext, emit: Emitter) -> Answer:
        self.contexts.append(ctx)
        self.started.append(ctx.message)
        message = ctx.message
        if "[불가]" in message:
            raise AssistantUnavailable("no model and no offline answer")
        if "[오류]" in message:
            raise RuntimeError("assistant bug")
        await emit.stage("intent", "started")
        if "[낯선단계]" in message:
            await emit.stage("not_a_stage", "started")
        intent = "location" if "[위치]" in message else "waste"
        await emit.stage("intent", "completed", result={"intent": intent})
        text = answer_for(message) + self.variant
        if "[위치]" in message:
            await emit.stage("location", "started")
            position = ctx.location or await emit.ask_location("가까운 수거함을 찾으려면 위치가 필요해요.")
            where = f"{position.latitude:.4f},{position.longitude:.4f}" if position else "위치 없음"
            await emit.stage("location", "completed", result={"position": where})
            text = f"위치: {where}. " + text
        await emit.stage("answer", "started")
        for delta in chunks(text):
            if "[멈춤]" in message:
                await asyncio.Event().wait()
            await emit.token(delta)
            if "[느림]" in message:
                await asyncio.sleep(self.delay)
        await emit.stage("answer", "completed")
        return Answer(intent=intent, text=text, message="답변을 준비했어요.")  # type: ignore[arg-type]

    def context(self, job_id: str) -> AskContext:
        """The context of one job (a worker also runs jobs other tests left in the embedded queue)."""
        return next(c for c in reversed(self.contexts) if str(c.job_id) == job_id)

    async def aclose(self) -> None:
        self.closed = True


def build_scripted(common: CommonSettings) -> ScriptedAssistant:
    """``CHAT_ASSISTANT=tests.chat.doubles:build_scripted``: loaded by dotted path like the real one."""
    return ScriptedAssistant()


def frames_of(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [f for f in events if f.get("event") == name]


def client_view(events: list[dict[str, Any]]) -> str:
    """What the chat client builds from one connection: a ``token_recovery`` snapshot replaces the
    bubble, ``token`` deltas are appended blindly. Checks the frame order on the way: ids strictly
    increase, except the snapshot's, which repeats the seq of its point (docs/api.md, SSE step 5)."""
    text, last = "", 0
    for frame in events:
        seq = int(frame["id"])
        if frame["event"] == "token_recovery":
            data = frame["data"]
            assert (data["status"], data["completed"], data["last_seq"]) == ("snapshot", False, seq)
            assert seq >= last
            text = data["accumulated"]
        else:
            assert seq > last, (seq, last)
            if frame["event"] == "token":
                text += frame["data"]["content"]
        last = seq
    return text
