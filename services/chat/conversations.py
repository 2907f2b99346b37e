"""Chats and messages as stored (docs/api.md, chat: conversation rules): keyset cursors, appending a
message with its bookkeeping (count, preview, activity, first title), history for the assistant.

Used by the API (list, history, the user message at submission) and by the runner (the assistant
message before ``done``), so both write a message the same way.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.chat.models import Chat, Message
from services.common.clock import utcnow
from services.common.errors import BadRequest, NotFound

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
TITLE_FROM_MESSAGE = 30  # characters of the first message that become the title
PREVIEW = 100  # characters of the latest message shown in the list
_CURSOR = re.compile(r"^(\d{1,17})_([0-9a-f]{32})$")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
APPEND_ATTEMPTS = 8


@dataclass(frozen=True)
class Position:
    at: datetime
    id: uuid.UUID


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """``<epoch microseconds>_<id hex>``: the last row of a page, exclusive (opaque to clients)."""
    return f"{(at - EPOCH) // timedelta(microseconds=1)}_{row_id.hex}"


def decode_cursor(raw: str) -> Position:
    match = _CURSOR.fullmatch(raw.strip())
    if match is None:
        raise BadRequest("cursor cannot be decoded", "INVALID_CURSOR")
    try:
        at = EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError:
        raise BadRequest("cursor cannot be decoded", "INVALID_CURSOR") from None
    return Position(at, uuid.UUID(hex=match[2]))


def title_from(message: str) -> str:
    return _LINE_BREAKS.sub(" ", message)[:TITLE_FROM_MESSAGE]


def chat_not_found() -> NotFound:
    return NotFound("chat not found", "CHAT_NOT_FOUND")


async def owned_chat(session: AsyncSession, user_id: uuid.UUID, chat_id: str) -> Chat:
    """The caller's visible chat; someone else's, a deleted or an unknown one is CHAT_NOT_FOUND."""
    try:
        key = uuid.UUID(chat_id)
    except ValueError:
        raise chat_not_found() from None
    chat = await session.get(Chat, key)
    if chat is None or chat.user_id != user_id or chat.deleted_at is not None:
        raise chat_not_found()
    return chat


async def list_chats(
    session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Chat], str | None]:
    """Most recent activity first, then id (docs/api.md, chat: conversation rules)."""
    after = decode_cursor(cursor) if cursor else None
    query = select(Chat).where(Chat.user_id == user_id, Chat.deleted_at.is_(None))
    if after is not None:
        query = query.where((Chat.activity_at < after.at) | ((Chat.activity_at == after.at) & (Chat.id < after.id)))
    rows = list(
        (await session.execute(query.order_by(Chat.activity_at.desc(), Chat.id.desc()).limit(limit + 1))).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].activity_at, rows[-1].id) if more and rows else None


async def history_page(
    session: AsyncSession, chat: Chat, limit: int, cursor: str | None
) -> tuple[list[Message], str | None]:
    """The newest ``limit`` messages older than the cursor, oldest first; the cursor to older ones."""
    before = decode_cursor(cursor) if cursor else None
    query = select(Message).where(Message.chat_id == chat.id)
    if before is not None:
        query = query.where(
            (Message.created_at < before.at) | ((Message.created_at == before.at) & (Message.id < before.id))
        )
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, encode_cursor(rows[0].created_at, rows[0].id) if more and rows else None


async def earlier_messages(session: AsyncSession, chat_id: uuid.UUID, before: datetime, limit: int) -> list[Message]:
    """Up to ``limit`` messages stored before ``before``, oldest first (the assistant's context)."""
    query = (
        select(Message)
        .where(Message.chat_id == chat_id, Message.created_at < before)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    rows = list((await session.execute(query)).scalars())
    rows.reverse()
    return rows


async def append_message(
    session: AsyncSession,
    chat_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    role: str,
    content: str,
    image_url: str | None = None,
    intent: str | None = None,
    not_before: datetime | None = None,
) -> Message:
    """Store a message and update its chat (count, preview, last message, activity, first title).

    ``created_at`` is at least 1 ms after the chat's last message (and after ``not_before``), so
    messages of a chat never share a timestamp and an answer is strictly later than its question.
    The chat row is updated compare-and-set on ``message_count``: concurrent appends to one chat
    retry instead of reusing a timestamp (no row lock needed, the same on SQLite and PostgreSQL).
    """
    for _ in range(APPEND_ATTEMPTS):
        chat = (
            await session.execute(select(Chat).where(Chat.id == chat_id).execution_options(populate_existing=True))
        ).scalar_one_or_none()
        if chat is None:
            raise chat_not_found()
        now = utcnow()
        at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the millisecond the API shows
        for floor in (chat.last_message_at, not_before):
            if floor is not None and at < floor + MS:
                at = floor.replace(microsecond=floor.microsecond // 1000 * 1000) + MS
        values: dict[str, object] = {
            "message_count": chat.message_count + 1,
            "last_message_at": at,
            "activity_at": at,
            "preview": content[:PREVIEW],
        }
        if role == "user" and chat.title is None and chat.message_count == 0:
            values["title"] = title_from(content)
        updated = await session.execute(
            update(Chat).where(Chat.id == chat_id, Chat.message_count == chat.message_count).values(**values)
        )
        if updated.rowcount:  # type: ignore[attr-defined]
            message = Message(
                id=uuid.uuid4(),
                chat_id=chat_id,
                user_id=user_id,
                role=role,
                content=content,
                image_url=image_url,
                intent=intent,
                created_at=at,
            )
            session.add(message)
            await session.flush()
            return message
    raise RuntimeError(f"chat {chat_id} kept changing while a message was appended")
