"""Chat jobs as stored: their lifecycle (claim, lease, finish, fail), ``done``, per-chat order, sweeping.

Shared by the API (a finished job's ``done`` for a late stream, the 240 s guarantee when no worker
is left) and the runner. Durability rules (docs/api.md, chat: sending a message; SSE):
- the assistant message and the job's outcome are stored in one transaction before ``done``;
- finishing is a compare-and-set on the job's status (and, for a worker, its lease), so a worker,
  another delivery and the deadline sweeper can race and exactly one of them finishes the job;
- jobs of one chat run one at a time in submission order: a job runs only when no earlier job of its
  chat is open, and finishing a job enqueues the next one;
- a running job holds a lease its worker renews; when the worker dies the lease runs out and the
  sweeper hands the job to another worker, which resumes it (or fails it, docs/chat.md).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.chat.assistant import STAGES
from services.chat.config import ChatSettings
from services.chat.conversations import append_message
from services.chat.models import OPEN, TERMINAL, Chat, Job, Message
from services.common.clock import iso_ms, utcnow
from services.common.db import Database
from services.common.jobs import (
    TERMINAL_EVENT,
    Frame,
    JobEventLog,
    JobQueue,
    event_data,
    record_backlog,
    record_job_duration,
)
from services.common.logging import get_logger

log = get_logger("eco2.chat.jobs")

QUEUED_MESSAGE = "질문을 접수했어요."
ERRORS = {
    "CHAT_TIMEOUT": "답변이 너무 오래 걸려서 멈췄어요. 다시 질문해 주세요.",
    "LLM_UNAVAILABLE": "지금은 답변을 만들 도우미를 쓸 수 없어요. 잠시 후 다시 질문해 주세요.",
    "INTERNAL_ERROR": "일시적인 문제로 답변을 끝내지 못했어요. 다시 질문해 주세요.",
}


class LostJob(Exception):
    """The job was finished (or taken over) by someone else while this worker held it."""


@dataclass
class ChatJobs:
    settings: ChatSettings
    db: Database
    events: JobEventLog
    queue: JobQueue

    # ------------------------------------------------------------------------------ reading

    async def load(self, job_id: str | uuid.UUID) -> Job | None:
        try:
            key = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(job_id)
        except ValueError:
            return None
        async with self.db.session() as session:
            return await session.get(Job, key)

    async def earlier_open(self, job: Job) -> bool:
        """Whether an earlier job of the same chat is still open (this one must wait its turn)."""
        async with self.db.session() as session:
            found = await session.scalar(
                select(Job.id)
                .where(Job.chat_id == job.chat_id, Job.status.in_(OPEN), Job.created_at < job.created_at)
                .limit(1)
            )
        return found is not None

    # ------------------------------------------------------------------------------ running

    async def claim(self, job: Job, owner: str) -> bool:
        """Take the job: queued, or processing with a lease that ran out (its worker died)."""
        now = utcnow()
        async with self.db.session() as session:
            claimed = await session.execute(
                update(Job)
                .where(
                    Job.id == job.id,
                    (Job.status == "queued") | ((Job.status == "processing") & (Job.lease_until < now)),
                )
                .values(
                    status="processing",
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                    attempts=Job.attempts + 1,
                )
            )
        return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def renew(self, job_id: uuid.UUID, owner: str) -> bool:
        until = utcnow() + timedelta(seconds=self.settings.lease_seconds)
        async with self.db.session() as session:
            renewed = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "processing", Job.lease_owner == owner)
                .values(lease_until=until)
            )
        return bool(renewed.rowcount)  # type: ignore[attr-defined]

    async def set_location(self, job_id: uuid.UUID, owner: str, latitude: float, longitude: float) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner)
                .values(latitude=latitude, longitude=longitude)
            )

    # ---------------------------------------------------------------------------- finishing

    async def complete(self, job: Job, owner: str, *, intent: str, text: str, message: str) -> None:
        """Store the assistant message and the outcome (one transaction), then emit ``done``."""
        async with self.db.session() as session:
            question = await session.get(Message, job.user_message_id)
            if question is None or await session.get(Chat, job.chat_id) is None:
                raise LostJob(str(job.id))  # erased with its user meanwhile: nothing left to answer
            answer = await append_message(
                session,
                job.chat_id,
                user_id=job.user_id,
                role="assistant",
                content=text,
                intent=intent,
                not_before=question.created_at,
            )
            completed_at = utcnow()
            outcome = {
                "status": "completed",
                "message": message,
                "result": {
                    "intent": intent,
                    "answer": text,
                    "persistence": {
                        "conversation_id": str(job.chat_id),
                        "user_id": str(job.user_id),
                        "user_message": str(question.id),
                        "user_message_created_at": iso_ms(question.created_at),
                        "assistant_message": str(answer.id),
                        "assistant_message_created_at": iso_ms(answer.created_at),
                    },
                },
            }
            stored = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == "processing", Job.lease_owner == owner)
                .values(
                    status="completed",
                    outcome=outcome,
                    assistant_message_id=answer.id,
                    completed_at=completed_at,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            if not stored.rowcount:  # type: ignore[attr-defined]
                raise LostJob(str(job.id))  # rolls the assistant message back with it
        job.status, job.outcome, job.completed_at = "completed", outcome, completed_at
        log.info("chat_job_finished", job_id=str(job.id), status="completed", intent=intent)
        await self.emit_done(job)
        await self.enqueue_next(job.chat_id)

    async def fail(
        self,
        job: Job,
        code: str,
        *,
        owner: str | None = None,
        stage: str | None = None,
        progress: int = 0,
        message: str | None = None,
    ) -> None:
        """End the job ``failed`` (no assistant message), the failing stage's event first if known."""
        message = message or ERRORS[code]
        outcome = {"status": "failed", "message": message, "result": {"error": {"code": code, "message": message}}}
        condition = [Job.id == job.id, Job.status.in_(OPEN)]
        if owner is not None:
            condition.append(Job.lease_owner == owner)
        completed_at = utcnow()
        async with self.db.session() as session:
            stored = await session.execute(
                update(Job)
                .where(*condition)
                .values(status="failed", outcome=outcome, completed_at=completed_at, lease_owner=None, lease_until=None)
            )
        if not stored.rowcount:  # type: ignore[attr-defined]
            fresh = await self.load(job.id)
            if fresh is not None:
                await self.ensure_done(fresh)
            return
        job.status, job.outcome, job.completed_at = "failed", outcome, completed_at
        log.info("chat_job_finished", job_id=str(job.id), status="failed", code=code)
        job_id = str(job.id)
        if stage is None and owner is None:
            # The sweeper ending a job it does not run: the stage left open in its log failed.
            stage, progress = await self._open_stage(job_id)
        if stage is not None:
            try:
                await self.events.append(job_id, stage, event_data(job_id, stage, "failed", progress, None, message))
            except Exception as exc:  # best effort: `done` must still go out
                log.warning("chat_stage_failed_event_not_written", job_id=job_id, error=repr(exc))
        await self.emit_done(job)
        await self.enqueue_next(job.chat_id)

    async def _open_stage(self, job_id: str) -> tuple[str | None, int]:
        """The last stage ``started`` and not ended in the job's log, and the job's progress so far."""
        open_stage, progress = None, 0
        try:
            frames = await self.events.read(job_id)
        except Exception:
            return None, 0
        for frame in frames:
            data = json.loads(frame.data)
            progress = max(progress, int(data.get("progress", 0)))
            if frame.event in STAGES:
                open_stage = frame.event if data.get("status") == "started" else None
        return open_stage, progress

    async def emit_done(self, job: Job) -> None:
        assert job.outcome is not None
        job_id = str(job.id)
        data = event_data(
            job_id, TERMINAL_EVENT, job.outcome["status"], 100, job.outcome["result"], job.outcome["message"]
        )
        await self.events.append(job_id, TERMINAL_EVENT, data)
        # Chat's ``done`` result has no timestamps for the job observer: its end-to-end time comes from here.
        record_job_duration("chat", job.outcome["status"], job.created_at, job.completed_at or utcnow())

    async def ensure_done(self, job: Job) -> Frame | None:
        """A finished job's ``done`` event, appended now if the log lacks it (a crash in between)."""
        if job.status not in TERMINAL or job.outcome is None:
            return None
        for _ in range(2):
            frames = await self.events.read(str(job.id))
            done = next((f for f in reversed(frames) if f.event == TERMINAL_EVENT), None)
            if done is not None:
                return done
            await self.emit_done(job)
        return None

    async def enqueue_next(self, chat_id: uuid.UUID) -> None:
        """Hand the chat's next queued job to a worker (its turn has come)."""
        async with self.db.session() as session:
            next_id = await session.scalar(
                select(Job.id).where(Job.chat_id == chat_id, Job.status.in_(OPEN)).order_by(Job.created_at).limit(1)
            )
            if next_id is not None:
                await session.execute(update(Job).where(Job.id == next_id).values(enqueued_at=utcnow()))
        if next_id is not None:
            await self.enqueue(next_id)

    async def enqueue(self, job_id: uuid.UUID) -> None:
        await self.queue.enqueue_or_log(str(job_id))  # a failure is logged: the sweeper enqueues jobs left waiting

    # ------------------------------------------------------------------------------- upkeep

    async def sweep(self) -> None:
        """Fail jobs past their deadline, hand orphaned ones to a worker, purge what is past retention."""
        now = utcnow()
        async with self.db.session() as session:
            overdue = list(
                (await session.execute(select(Job).where(Job.status.in_(OPEN), Job.deadline_at < now).limit(200)))
                .scalars()
                .all()
            )
            orphaned = (
                (
                    await session.execute(
                        select(Job.id)
                        .where(
                            Job.deadline_at >= now,
                            ((Job.status == "processing") & (Job.lease_until < now))
                            | (
                                (Job.status == "queued")
                                & (Job.enqueued_at < now - timedelta(seconds=self.settings.requeue_after_seconds))
                            ),
                        )
                        .limit(200)
                    )
                )
                .scalars()
                .all()
            )
            if orphaned:
                await session.execute(update(Job).where(Job.id.in_(orphaned)).values(enqueued_at=now))
            # The backlog the chat pipeline dashboard and Eco2JobsStuckPastDeadline read.
            oldest = await session.scalar(select(func.min(Job.created_at)).where(Job.status.in_(OPEN)))
            record_backlog("chat", overdue=len(overdue), oldest_unfinished=oldest, now=now)
        for job in overdue:
            await self.fail(job, "CHAT_TIMEOUT")
        for job_id in orphaned:
            await self.enqueue(job_id)
        if orphaned:
            log.info("chat_jobs_requeued", count=len(orphaned))
        await self.purge(now)

    async def purge(self, now: Any) -> None:
        retained = now - timedelta(seconds=self.settings.retention_seconds)
        deleted_before = now - timedelta(seconds=self.settings.purge_deleted_after_seconds)
        async with self.db.session() as session:
            old = (await session.execute(select(Job.id).where(Job.completed_at < retained).limit(500))).scalars().all()
            if old:
                await session.execute(delete(Job).where(Job.id.in_(old)))
            gone = (
                (await session.execute(select(Chat.id).where(Chat.deleted_at < deleted_before).limit(500)))
                .scalars()
                .all()
            )
            if gone:
                await session.execute(delete(Message).where(Message.chat_id.in_(gone)))
                await session.execute(delete(Chat).where(Chat.id.in_(gone)))
        for job_id in old:
            await self.events.delete(str(job_id))


async def erase_user(session: AsyncSession, events: JobEventLog, user_id: uuid.UUID) -> int:
    """``user.deleted``: the user's chats, messages, jobs and job event logs."""
    job_ids = (await session.execute(select(Job.id).where(Job.user_id == user_id))).scalars().all()
    await session.execute(delete(Job).where(Job.user_id == user_id))
    await session.execute(delete(Message).where(Message.user_id == user_id))
    await session.execute(delete(Chat).where(Chat.user_id == user_id))
    for job_id in job_ids:
        await events.delete(str(job_id))
    return len(job_ids)
