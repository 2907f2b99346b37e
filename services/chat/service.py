"""Chat rules of docs/api.md (chat) on the API side: conversations, sending a message (checks, the
user message stored before the 202, the job and its ``queued`` event), location input, job ownership."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.chat.config import ChatSettings
from services.chat.conversations import append_message, history_page, list_chats, owned_chat
from services.chat.jobs import QUEUED_MESSAGE, ChatJobs
from services.chat.models import TERMINAL, Chat, Job
from services.chat.schemas import (
    ChatCreated,
    ChatDetail,
    ChatList,
    ChatSummary,
    InputRequest,
    MessageAccepted,
    SendMessage,
    message_out,
)
from services.common.clock import utcnow
from services.common.errors import BadRequest, Conflict, NotFound
from services.common.jobs import Frame, event_data
from services.common.ratelimit import RateLimiter
from services.common.uploads import ImageResolver
from services.registry import SERVICES

# Workers end overdue jobs themselves (timeout, sweeper); past this much more, the stream does.
OVERDUE_GRACE_SECONDS = 5.0


def job_not_found() -> NotFound:
    return NotFound("job not found", "JOB_NOT_FOUND")


def summary(chat: Chat) -> ChatSummary:
    return ChatSummary(
        id=str(chat.id),
        title=chat.title,
        preview=chat.preview,
        message_count=chat.message_count,
        last_message_at=chat.last_message_at,
        created_at=chat.created_at,
    )


@dataclass
class ChatService:
    settings: ChatSettings
    jobs: ChatJobs
    limiter: RateLimiter
    images: ImageResolver

    def __post_init__(self) -> None:
        self.models = self.settings.accepted_models  # read once: it parses the assistant's settings

    # -------------------------------------------------------------------------- conversations

    async def list(self, session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None) -> ChatList:
        chats, next_cursor = await list_chats(session, user_id, limit, cursor)
        return ChatList(chats=[summary(c) for c in chats], next_cursor=next_cursor)

    async def create(self, session: AsyncSession, user_id: uuid.UUID, title: str | None) -> ChatCreated:
        now = utcnow()
        chat = Chat(id=uuid.uuid4(), user_id=user_id, title=title, message_count=0, created_at=now, activity_at=now)
        session.add(chat)
        await session.flush()
        return ChatCreated(id=str(chat.id), title=chat.title, created_at=chat.created_at)

    async def detail(
        self, session: AsyncSession, user_id: uuid.UUID, chat_id: str, limit: int, cursor: str | None
    ) -> ChatDetail:
        chat = await owned_chat(session, user_id, chat_id)
        messages, next_cursor = await history_page(session, chat, limit, cursor)
        return ChatDetail(
            id=str(chat.id),
            title=chat.title,
            created_at=chat.created_at,
            messages=[message_out(m) for m in messages],
            has_more=next_cursor is not None,
            next_cursor=next_cursor,
        )

    async def rename(self, session: AsyncSession, user_id: uuid.UUID, chat_id: str, title: str) -> None:
        chat = await owned_chat(session, user_id, chat_id)
        chat.title = title

    async def delete(self, session: AsyncSession, user_id: uuid.UUID, chat_id: str) -> None:
        chat = await owned_chat(session, user_id, chat_id)
        chat.deleted_at = utcnow()  # hidden at once; the sweeper purges it later

    # ----------------------------------------------------------------------------- messages

    async def send(self, session: AsyncSession, user_id: uuid.UUID, chat_id: str, body: SendMessage) -> MessageAccepted:
        chat = await owned_chat(session, user_id, chat_id)
        if not body.message:
            raise BadRequest("message is required", "MESSAGE_REQUIRED")
        if body.model is not None and body.model not in self.models:
            raise BadRequest(f"unknown model {body.model!r}", "UNSUPPORTED_MODEL")
        if body.image_url:
            await self.images.resolve(body.image_url, user_id)  # 400 with the image codes; before the quota
        await self.limiter.enforce(str(user_id))

        question = await append_message(
            session, chat.id, user_id=user_id, role="user", content=body.message, image_url=body.image_url or None
        )
        location = body.user_location
        job = Job(
            id=uuid.uuid4(),
            chat_id=chat.id,
            user_id=user_id,
            user_message_id=question.id,
            model=body.model,
            latitude=location.latitude if location else None,
            longitude=location.longitude if location else None,
            status="queued",
            attempts=0,
            created_at=question.created_at,  # per-chat order = the order of the questions
            deadline_at=question.created_at + timedelta(seconds=self.settings.job_deadline_seconds),
            enqueued_at=utcnow(),
        )
        session.add(job)
        job_id = str(job.id)
        # Stored before the commit: a stream opened right after the 202 finds it; a failed commit
        # leaves only an invisible log that expires.
        await self.jobs.events.append(
            job_id, "queued", event_data(job_id, "queued", "completed", 0, None, QUEUED_MESSAGE)
        )
        await session.commit()
        # Always enqueued: a job whose turn has not come is dropped by the worker and enqueued again
        # when the chat's earlier job finishes.
        await self.jobs.enqueue(job.id)
        return MessageAccepted(
            job_id=job_id, stream_url=SERVICES["chat"].public_url("", f"/{job_id}/events"), status="queued"
        )

    # --------------------------------------------------------------------------------- jobs

    async def owned_job(self, session: AsyncSession, user_id: uuid.UUID, job_id: str) -> Job:
        """The caller's job; unknown, expired or someone else's is JOB_NOT_FOUND."""
        try:
            key = uuid.UUID(job_id)
        except ValueError:
            raise job_not_found() from None
        job = await session.get(Job, key)
        retained = utcnow() - timedelta(seconds=self.settings.retention_seconds)
        if job is None or job.user_id != user_id or (job.completed_at is not None and job.completed_at < retained):
            raise job_not_found()
        return job

    async def give_input(self, session: AsyncSession, user_id: uuid.UUID, job_id: str, body: InputRequest) -> None:
        job = await self.owned_job(session, user_id, job_id)
        reply: dict[str, Any] = {"type": body.type}
        if body.type == "location":
            reply["data"] = _coordinates(body.data)
        accepted = await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                Job.status == "processing",
                Job.input_until > utcnow(),
                Job.input_reply.is_(None),
            )
            .values(input_reply=reply, input_until=None)
        )
        if not accepted.rowcount:  # type: ignore[attr-defined]
            raise Conflict("the job is not waiting for input", "NOT_WAITING_FOR_INPUT")

    async def settle_overdue(self, job: Job) -> Job:
        """A job past its deadline that no worker ended (none running?): end it here, at connect time,
        so the stream still ends with ``done`` (docs/api.md: every job ends within 240 s)."""
        if job.status in TERMINAL or utcnow() <= job.deadline_at + timedelta(seconds=OVERDUE_GRACE_SECONDS):
            return job
        await self.jobs.fail(job, "CHAT_TIMEOUT")
        return await self.jobs.load(job.id) or job

    async def terminal_frame(self, job_id: uuid.UUID) -> Frame | None:
        job = await self.jobs.load(job_id)
        return await self.jobs.ensure_done(job) if job is not None else None


def _coordinates(data: dict[str, Any] | None) -> dict[str, float]:
    """``data`` of a location input: both coordinates, numbers in range (else 400 INVALID_INPUT)."""
    limits = {"latitude": 90.0, "longitude": 180.0}
    out: dict[str, float] = {}
    for name, limit in limits.items():
        value = (data or {}).get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise BadRequest(f"{name} is required", "INVALID_INPUT")
        if not -limit <= value <= limit:
            raise BadRequest(f"{name} out of range", "INVALID_INPUT")
        out[name] = float(value)
    return out
