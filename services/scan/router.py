"""HTTP layer of the scan service (docs/api.md: scan, SSE)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from services.common.deps import CurrentUser, StreamUser, current_stream_user, current_user
from services.common.errors import responses
from services.common.jobs import JobStreamResponse, parse_last_event_id
from services.common.routes import DirectRouter, direct, json_body
from services.scan.schemas import ProcessingResponse, ScanRequest, ScanResult, SubmitResponse
from services.scan.service import ScanService, job_key

# Each endpoint below also has a direct handler (``services.common.routes``): the common case reads the
# request itself instead of going through FastAPI's parameter solving; anything else (an odd header, a
# body that does not validate) falls through to FastAPI, which answers as declared.
router = DirectRouter(tags=["scan"])


async def get_service(request: Request) -> ScanService:
    return request.app.state.scan


ServiceDep = Annotated[ScanService, Depends(get_service)]
# 1–128 visible ASCII characters (docs/api.md, scan); anything else is a 422 like any invalid input.
IdempotencyHeader = Annotated[
    str | None, Header(alias="X-Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")  # the header's declared constraints, for the direct path


async def _submit_direct(request: Request) -> Response | None:
    idempotency_key = request.headers.get("x-idempotency-key")
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        return None
    body = await json_body(request, ScanRequest)
    if body is None:
        return None
    user = await current_user(request)  # a request without a valid token: the same 401 FastAPI's path gives
    return await _submit(body, user.user_id, request.app.state.scan, idempotency_key)


@router.post(
    "",
    status_code=202,
    response_model=SubmitResponse,
    responses=responses(
        (400, "IMAGE_URL_NOT_ALLOWED"),
        (400, "UPLOAD_INCOMPLETE"),
        (400, "FILE_TOO_LARGE"),
        (400, "INVALID_IMAGE_CONTENT"),
        (400, "UNSUPPORTED_MODEL"),
        (409, "IDEMPOTENCY_KEY_REUSED"),
        (429, "RATE_LIMITED"),
    ),
)
@direct(_submit_direct)
async def submit(
    body: ScanRequest, user: CurrentUser, service: ServiceDep, idempotency_key: IdempotencyHeader = None
) -> Response:
    return await _submit(body, user.user_id, service, idempotency_key)


async def _submit(body: ScanRequest, user_id: uuid.UUID, service: ScanService, idempotency_key: str | None) -> Response:
    # Returned as a response (the model above documents it): no second validation pass of our own output.
    accepted = await service.submit(user_id, body, idempotency_key)
    return JSONResponse(accepted.model_dump(), status_code=202)


async def _events_direct(request: Request) -> Response:
    user = await current_stream_user(request)
    return await _events(request.path_params["job_id"], user.user_id, request.app.state.scan,
                         request.headers.get("last-event-id"))  # fmt: skip


@router.get("/{job_id}/events", responses=responses((404, "JOB_NOT_FOUND")))
@direct(_events_direct)
async def events(
    job_id: str,
    user: StreamUser,
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    return await _events(job_id, user.user_id, service, last_event_id)


async def _events(job_id: str, user_id: uuid.UUID, service: ScanService, last_event_id: str | None) -> Response:
    after = parse_last_event_id(last_event_id)
    key = str(job_key(job_id))  # canonical form: the log is keyed by it
    # Subscribed before the log is read (with the ownership check, one round trip), so nothing
    # appended in between is missed; the stream removes the subscription when it ends.
    subscription = await service.events.attach(key)
    try:
        # 404 before any stream starts; a database read's connection goes back to the pool before streaming.
        job = await service.stream_job(user_id, key, after or 0)
    except BaseException:
        service.events.hub.remove(subscription)
        raise
    return JobStreamResponse(
        service.events,
        key,
        after,
        keepalive_seconds=service.settings.sse_keepalive_seconds,
        max_seconds=service.settings.sse_max_seconds,
        finished=job.finished,
        finished_when_idle=job.when_idle,
        subscription=subscription,
        backlog=job.backlog,
    )


async def _result_direct(request: Request) -> Response:
    user = await current_user(request)
    return await _result(request.path_params["job_id"], user.user_id, request.app.state.scan)


@router.get(
    "/{job_id}/result",
    response_model=ScanResult,
    responses={202: {"model": ProcessingResponse}, **responses((404, "JOB_NOT_FOUND"))},
)
@direct(_result_direct)
async def result(job_id: str, user: CurrentUser, service: ServiceDep) -> Response:
    return await _result(job_id, user.user_id, service)


async def _result(job_id: str, user_id: uuid.UUID, service: ScanService) -> Response:
    status, body = await service.result(user_id, job_id)
    if isinstance(body, bytes):  # the stored result's JSON text, sent as stored
        return Response(body, status_code=status, media_type="application/json")
    return JSONResponse(body, status_code=status, headers={"Retry-After": "2"})
