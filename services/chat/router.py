"""HTTP layer of the chat service (docs/api.md: chat, SSE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response

from services.chat.models import TERMINAL
from services.chat.schemas import (
    ChatCreated,
    ChatDetail,
    ChatList,
    CreateChat,
    InputAccepted,
    InputRequest,
    MessageAccepted,
    RenameChat,
    SendMessage,
)
from services.chat.service import ChatService
from services.common.deps import CurrentUser, SessionDep, StreamUser
from services.common.errors import responses
from services.common.jobs import JobStreamResponse, parse_last_event_id, snapshot_tokens

router = APIRouter(tags=["chat"])


def get_service(request: Request) -> ChatService:
    return request.app.state.chat


ServiceDep = Annotated[ChatService, Depends(get_service)]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page, unchanged")]


@router.get("", response_model=ChatList, responses=responses((400, "INVALID_CURSOR")))
async def list_chats(
    user: CurrentUser, session: SessionDep, service: ServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> ChatList:
    return await service.list(session, user.user_id, limit, cursor)


@router.post("", status_code=201, response_model=ChatCreated)
async def create_chat(
    user: CurrentUser, session: SessionDep, service: ServiceDep, body: Annotated[CreateChat | None, Body()] = None
) -> ChatCreated:
    return await service.create(session, user.user_id, body.title if body else None)


@router.get(
    "/{chat_id}", response_model=ChatDetail, responses=responses((404, "CHAT_NOT_FOUND"), (400, "INVALID_CURSOR"))
)
async def chat_detail(
    chat_id: str,
    user: CurrentUser,
    session: SessionDep,
    service: ServiceDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> ChatDetail:
    return await service.detail(session, user.user_id, chat_id, limit, cursor)


@router.patch("/{chat_id}", status_code=204, responses=responses((404, "CHAT_NOT_FOUND")))
async def rename_chat(
    chat_id: str, body: RenameChat, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> Response:
    await service.rename(session, user.user_id, chat_id, body.title)
    return Response(status_code=204)


@router.delete("/{chat_id}", status_code=204, responses=responses((404, "CHAT_NOT_FOUND")))
async def delete_chat(chat_id: str, user: CurrentUser, session: SessionDep, service: ServiceDep) -> Response:
    await service.delete(session, user.user_id, chat_id)
    return Response(status_code=204)


@router.post(
    "/{chat_id}/messages",
    status_code=202,
    response_model=MessageAccepted,
    responses=responses(
        (400, "MESSAGE_REQUIRED"),
        (400, "IMAGE_URL_NOT_ALLOWED"),
        (400, "UPLOAD_INCOMPLETE"),
        (400, "FILE_TOO_LARGE"),
        (400, "INVALID_IMAGE_CONTENT"),
        (400, "UNSUPPORTED_MODEL"),
        (404, "CHAT_NOT_FOUND"),
        (429, "RATE_LIMITED"),
    ),
)
async def send_message(
    chat_id: str, body: SendMessage, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> MessageAccepted:
    return await service.send(session, user.user_id, chat_id, body)


@router.get("/{job_id}/events", responses=responses((404, "JOB_NOT_FOUND")))
async def events(
    job_id: str,
    user: StreamUser,
    session: SessionDep,
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    job = await service.owned_job(session, user.user_id, job_id)  # 404 before any stream starts
    await session.close()  # a stream can last minutes; it must not hold a database connection
    job = await service.settle_overdue(job)
    settings = service.settings
    return JobStreamResponse(
        service.jobs.events,
        str(job.id),
        parse_last_event_id(last_event_id),
        keepalive_seconds=settings.sse_keepalive_seconds,
        max_seconds=settings.sse_max_seconds,
        # Only a job already over at connect time can lack a live `done`; running jobs deliver it.
        finished=(lambda: service.terminal_frame(job.id)) if job.status in TERMINAL else None,
        replay=snapshot_tokens,
    )


@router.post(
    "/{job_id}/input",
    status_code=202,
    response_model=InputAccepted,
    responses=responses((400, "INVALID_INPUT"), (404, "JOB_NOT_FOUND"), (409, "NOT_WAITING_FOR_INPUT")),
)
async def give_input(
    job_id: str, body: InputRequest, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> InputAccepted:
    await service.give_input(session, user.user_id, job_id, body)
    return InputAccepted(job_id=job_id.lower(), status="received")
