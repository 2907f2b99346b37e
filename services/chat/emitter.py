"""The runner's side of ``services/chat/assistant.py``'s ``Emitter``: every call becomes one persisted,
ordered job event with the progress of docs/api.md (SSE events, chat).

A job resumed by another worker (its first worker died) runs the assistant again. What the first
run already sent stays sent: a stage event already in the log is not repeated, and the new answer's
tokens are compared with the text already streamed — the matching prefix is swallowed and only the
rest goes out, so a client that appended the first deltas blindly sees each character once. An
answer that does not start with what was already streamed cannot be delivered without repeating or
contradicting it: the job then ends ``failed`` (``Diverged``) rather than show a garbled bubble.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from services.chat.assistant import STAGES, Position, StageStatus
from services.chat.models import Job
from services.common.clock import utcnow
from services.common.db import Database
from services.common.jobs import Frame, JobEventLog, event_data

# docs/api.md, SSE events (chat): intent 10, vision 20, lookup stages 30–60, aggregator 70,
# summarize 75, answer 80, done 100. Progress never decreases: a stage reports at least the job's
# progress so far.
PROGRESS = {
    "queued": 0,
    "intent": 10,
    "vision": 20,
    "waste_rag": 30,
    "character": 35,
    "location": 40,
    "collection_point": 40,
    "bulk_waste": 45,
    "recyclable_price": 45,
    "weather": 50,
    "web_search": 55,
    "image_generation": 60,
    "general": 60,
    "aggregator": 70,
    "summarize": 75,
    "answer": 80,
    "done": 100,
}
STAGE_STATUSES = ("started", "completed", "failed")
TOKEN = "token"  # noqa: S105 - an event name
NEEDS_INPUT = "needs_input"
INPUT_POLL_SECONDS = 0.2


class Diverged(Exception):
    """A resumed answer does not continue the text already streamed to the client."""


def streamed_text(frames: Sequence[Frame]) -> str:
    return "".join(str(json.loads(f.data).get("content", "")) for f in frames if f.event == TOKEN)


class JobEmitter:
    def __init__(
        self,
        *,
        db: Database,
        events: JobEventLog,
        job: Job,
        owner: str,
        input_timeout_seconds: float,
        backlog: Sequence[Frame] = (),
        set_location: Callable[[float, float], Awaitable[None]] | None = None,
    ) -> None:
        self.db, self.events, self.job, self.owner = db, events, job, owner
        self.job_id = str(job.id)
        self.input_timeout_seconds = input_timeout_seconds
        self.set_location = set_location
        self.progress = max((int(json.loads(f.data).get("progress", 0)) for f in backlog), default=0)
        # What an earlier run of this job already sent (empty on a first run).
        self._sent_before = streamed_text(backlog)
        self._stages_before = {(f.event, _status(f)) for f in backlog if f.event in STAGES}
        self._produced: list[str] = []
        self._produced_len = 0
        self.open_stage: str | None = None  # the last stage started and not yet ended (for a timeout)

    @property
    def text(self) -> str:
        """Everything the assistant produced in this run (the full answer, resumed or not)."""
        return "".join(self._produced)

    async def _append(self, event: str, data: dict[str, Any]) -> None:
        await self.events.append(self.job_id, event, data)

    async def stage(
        self, name: str, status: StageStatus, *, result: dict[str, Any] | None = None, message: str | None = None
    ) -> None:
        if name not in STAGES:
            raise ValueError(f"unknown chat stage {name!r} (docs/api.md, SSE events)")
        if status not in STAGE_STATUSES:
            raise ValueError(f"unknown stage status {status!r}")
        self.open_stage = name if status == "started" else None
        if (name, status) in self._stages_before:
            self._stages_before.discard((name, status))  # sent by the earlier run: once is enough
            self.progress = max(self.progress, PROGRESS[name])
            return
        self.progress = max(self.progress, PROGRESS[name])
        await self._append(name, event_data(self.job_id, name, status, self.progress, result, message))

    async def token(self, delta: str, *, node: str | None = None) -> None:
        if not delta:
            return
        start = self._produced_len
        self._produced.append(delta)
        self._produced_len += len(delta)
        before = self._sent_before
        if start < len(before):
            end = min(self._produced_len, len(before))
            if delta[: end - start] != before[start:end]:
                raise Diverged(self.job_id)
            delta = delta[end - start :]
            if not delta:
                return
        extra: dict[str, Any] = {"content": delta}
        if node is not None:
            extra["node"] = node
        await self._append(TOKEN, event_data(self.job_id, TOKEN, "streaming", self.progress, None, **extra))

    async def ask_location(self, message: str) -> Position | None:
        """``needs_input``, then wait for ``POST /chat/{job_id}/input`` (or the timeout)."""
        job = self.job
        if job.latitude is not None and job.longitude is not None:
            return Position(job.latitude, job.longitude)
        reply = await self._reply()
        if reply is None:
            until = utcnow() + timedelta(seconds=self.input_timeout_seconds)
            async with self.db.session() as session:
                await session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.lease_owner == self.owner, Job.input_reply.is_(None))
                    .values(input_until=until)
                )
            result = {"input_type": "location", "timeout_s": round(self.input_timeout_seconds)}
            await self._append(
                NEEDS_INPUT, event_data(self.job_id, NEEDS_INPUT, "waiting", self.progress, result, message)
            )
            reply = await self._wait_for_reply(until)
        if reply.get("type") != "location":
            return None
        data = reply["data"]
        position = Position(float(data["latitude"]), float(data["longitude"]))
        job.latitude, job.longitude = position.latitude, position.longitude
        if self.set_location is not None:
            await self.set_location(position.latitude, position.longitude)
        return position

    async def _reply(self) -> dict[str, Any] | None:
        async with self.db.session() as session:
            return await session.scalar(select(Job.input_reply).where(Job.id == self.job.id))

    async def _wait_for_reply(self, until: Any) -> dict[str, Any]:
        while utcnow() < until:
            reply = await self._reply()
            if reply is not None:
                return reply
            await asyncio.sleep(INPUT_POLL_SECONDS)
        # Time is up: close the window, unless an answer slipped in at the last moment (then it counts).
        async with self.db.session() as session:
            closed = await session.execute(
                update(Job)
                .where(Job.id == self.job.id, Job.input_reply.is_(None))
                .values(input_until=None, input_reply={"type": "timeout"})
            )
        if closed.rowcount:  # type: ignore[attr-defined]
            return {"type": "timeout"}
        return await self._reply() or {"type": "timeout"}


def _status(frame: Frame) -> str:
    return str(json.loads(frame.data).get("status", ""))


def new_owner() -> str:
    return uuid.uuid4().hex
