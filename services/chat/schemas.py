"""Request and response bodies of the chat service (docs/api.md, chat)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from services.common.schemas import MultilineText, Text, TrimmedText, UtcDateTime


class CreateChat(BaseModel):
    title: TrimmedText | None = Field(default=None, min_length=1, max_length=100)


class RenameChat(BaseModel):
    title: TrimmedText = Field(min_length=1, max_length=100)


class ChatCreated(BaseModel):
    id: str
    title: str | None
    created_at: UtcDateTime


class ChatSummary(BaseModel):
    id: str
    title: str | None
    preview: str | None
    message_count: int
    last_message_at: UtcDateTime | None
    created_at: UtcDateTime


class ChatList(BaseModel):
    chats: list[ChatSummary]
    next_cursor: str | None


class MessageOut(BaseModel):
    id: str
    role: Literal["user", "assistant"]
    content: str
    image_url: str | None
    intent: str | None
    created_at: UtcDateTime


class ChatDetail(BaseModel):
    id: str
    title: str | None
    created_at: UtcDateTime
    messages: list[MessageOut]
    has_more: bool
    next_cursor: str | None


class UserLocation(BaseModel):
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)


class SendMessage(BaseModel):
    # Blank or absent is the contract's 400 MESSAGE_REQUIRED (checked by the service), not a 422.
    message: MultilineText | None = Field(default=None, max_length=2000)
    image_url: Text | None = Field(default=None, max_length=2048)
    user_location: UserLocation | None = None
    model: Text | None = Field(default=None, max_length=128)

    @field_validator("message", "image_url", mode="before")
    @classmethod
    def _trim(cls, value: Any) -> Any:
        # Trimmed before the length check (docs/api.md, conventions: data).
        return value.strip() if isinstance(value, str) else value


class MessageAccepted(BaseModel):
    job_id: str
    stream_url: str
    status: Literal["queued"]


class InputRequest(BaseModel):
    type: Literal["location", "cancel"]
    # Checked by the service: ``location`` without both coordinates is 400 INVALID_INPUT.
    data: dict[str, Any] | None = None


class InputAccepted(BaseModel):
    job_id: str
    status: Literal["received"]


def message_out(row: Any) -> MessageOut:
    return MessageOut(
        id=str(row.id),
        role=row.role,
        content=row.content,
        image_url=row.image_url,
        intent=row.intent,
        created_at=row.created_at,
    )
