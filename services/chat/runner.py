"""Runs one chat job: claim it, build the assistant's context, stream its answer through the
``JobEmitter``, store the answer and emit ``done`` — within the job's deadline, under a lease.

The assistant is loaded by dotted path (``CHAT_ASSISTANT``, default
``services.chat.agent:build_assistant``). When it cannot be loaded the worker still starts: it logs
why, once, and every job ends ``failed`` with ``LLM_UNAVAILABLE`` and a Korean message — a missing
module is a configuration problem to report, not a reason for a crash loop or a hanging job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from services.chat.assistant import INTENTS, Answer, AskContext, Assistant, AssistantUnavailable, Position, Turn
from services.chat.config import ChatSettings
from services.chat.conversations import earlier_messages
from services.chat.emitter import Diverged, JobEmitter, new_owner
from services.chat.jobs import ChatJobs, LostJob
from services.chat.models import TERMINAL, Job, Message
from services.common.clock import utcnow
from services.common.config import CommonSettings
from services.common.errors import dependency_unavailable
from services.common.identity import load
from services.common.logging import get_logger

log = get_logger("eco2.chat.runner")
T = TypeVar("T")


class MissingAssistant:
    """Stands in for an assistant that could not be loaded: every answer is LLM_UNAVAILABLE."""

    def __init__(self, target: str, reason: str) -> None:
        self.target, self.reason = target, reason

    async def answer(self, ctx: AskContext, emit: object) -> Answer:
        raise AssistantUnavailable(f"assistant {self.target} not loaded: {self.reason}")

    async def aclose(self) -> None:
        return None


def load_assistant(settings: ChatSettings, common: CommonSettings) -> Assistant:
    try:
        assistant: Assistant = load(settings.assistant)(common)
    except Exception as exc:
        log.error(
            "chat_assistant_unavailable",
            assistant=settings.assistant,
            error=repr(exc),
            effect="every chat job ends failed with LLM_UNAVAILABLE until the assistant can be loaded",
        )
        return MissingAssistant(settings.assistant, repr(exc))
    log.info("chat_assistant_loaded", assistant=settings.assistant)
    return assistant


def assistant_problem(settings: ChatSettings) -> str | None:
    """Why the configured assistant cannot be imported (``eco2 dev`` says so at start-up), or None."""
    module, _, attribute = settings.assistant.partition(":")
    try:
        if not callable(getattr(importlib.import_module(module), attribute, None)):
            return f"{module} has no {attribute}()"
    except ImportError as exc:
        return f"cannot import {module}: {exc}"
    return None


class LeaseLost(Exception):
    pass


@dataclass
class ChatRunner:
    jobs: ChatJobs
    assistant: Assistant

    @property
    def settings(self) -> ChatSettings:
        return self.jobs.settings

    async def run(self, job_id: str, delivery: int) -> None:
        """Run (or resume) one job; the work queue's handler."""
        jobs = self.jobs
        job = await jobs.load(job_id)
        if job is None:
            return  # erased (account deleted) or purged
        if job.status in TERMINAL:
            await jobs.ensure_done(job)  # a crash between storing the outcome and emitting done
            await jobs.enqueue_next(job.chat_id)
            return
        if utcnow() >= job.deadline_at:
            await jobs.fail(job, "CHAT_TIMEOUT")
            return
        if await jobs.earlier_open(job):
            return  # not its turn: finishing the earlier job enqueues this one
        owner = new_owner()
        if not await jobs.claim(job, owner):
            return  # another worker holds it; if that one dies, the sweeper hands it on
        job = await jobs.load(job.id)
        if job is None:
            return
        await self._run_claimed(job, owner)

    async def _run_claimed(self, job: Job, owner: str) -> None:
        jobs = self.jobs
        emitter = JobEmitter(
            db=jobs.db,
            events=jobs.events,
            job=job,
            owner=owner,
            input_timeout_seconds=self.settings.input_timeout_seconds,
            backlog=await jobs.events.read(str(job.id)),
            set_location=functools.partial(jobs.set_location, job.id, owner),
        )
        remaining = (job.deadline_at - utcnow()).total_seconds()
        try:
            ctx = await self._context(job)
            async with asyncio.timeout(remaining):
                answer = await self._leased(job, owner, self.assistant.answer(ctx, emitter))
        except TimeoutError:
            await jobs.fail(job, "CHAT_TIMEOUT", owner=owner, stage=emitter.open_stage, progress=emitter.progress)
            return
        except AssistantUnavailable as exc:
            log.warning("chat_assistant_unavailable_for_job", job_id=str(job.id), error=str(exc))
            await jobs.fail(job, "LLM_UNAVAILABLE", owner=owner, stage=emitter.open_stage, progress=emitter.progress)
            return
        except LeaseLost:
            log.warning("chat_job_lease_lost", job_id=str(job.id))
            return
        except Diverged:
            log.warning("chat_resumed_answer_diverged", job_id=str(job.id))
            await jobs.fail(job, "INTERNAL_ERROR", owner=owner, progress=emitter.progress)
            return
        except Exception as exc:
            if dependency_unavailable(exc):
                raise  # a store outage: the queue retries in place; the lease lets another worker resume
            log.exception("chat_job_failed", job_id=str(job.id))
            await jobs.fail(job, "INTERNAL_ERROR", owner=owner, stage=emitter.open_stage, progress=emitter.progress)
            return
        await self._complete(job, owner, answer, emitter)

    async def _complete(self, job: Job, owner: str, answer: Answer, emitter: JobEmitter) -> None:
        intent = answer.intent if answer.intent in INTENTS else "general"
        text = answer.text or emitter.text
        if answer.text and emitter.text and answer.text != emitter.text:
            # The contract stores exactly what ``done`` carries; the client replaces its bubble with it.
            log.warning("chat_answer_differs_from_stream", job_id=str(job.id))
        if not text.strip():
            log.warning("chat_empty_answer", job_id=str(job.id))
            await self.jobs.fail(job, "INTERNAL_ERROR", owner=owner, progress=emitter.progress)
            return
        try:
            await self.jobs.complete(job, owner, intent=intent, text=text, message=answer.message)
        except LostJob:
            fresh = await self.jobs.load(job.id)
            if fresh is not None:
                await self.jobs.ensure_done(fresh)

    async def _context(self, job: Job) -> AskContext:
        async with self.jobs.db.session() as session:
            question = await session.get(Message, job.user_message_id)
            if question is None:
                raise LostJob(str(job.id))
            earlier = await earlier_messages(session, job.chat_id, question.created_at, self.settings.history_messages)
        location = (
            Position(job.latitude, job.longitude) if job.latitude is not None and job.longitude is not None else None
        )
        return AskContext(
            job_id=job.id,
            chat_id=job.chat_id,
            user_id=job.user_id,
            message=question.content,
            image_url=question.image_url,
            location=location,
            model=job.model,
            history=tuple(Turn(m.role, m.content, m.intent) for m in earlier),  # type: ignore[arg-type]
        )

    async def _leased(self, job: Job, owner: str, work: Awaitable[T]) -> T:
        """Run ``work`` while renewing the job's lease; stop it if the lease is lost."""
        task = asyncio.ensure_future(work)
        interval = max(self.settings.lease_seconds / 3, 0.05)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return task.result()
                if not await self.jobs.renew(job.id, owner):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                    raise LeaseLost(str(job.id))
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
