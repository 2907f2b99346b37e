"""HTTP layer of the scan service (docs/api.md: scan, SSE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from services.common.deps import CurrentUser, StreamUser
from services.common.errors import responses
from services.common.jobs import JobStreamResponse, parse_last_event_id
from services.scan.schemas import ProcessingResponse, ScanRequest, ScanResult, SubmitResponse
from services.scan.service import ScanService

router = APIRouter(tags=["scan"])


async def get_service(request: Request) -> ScanService:
    return request.app.state.scan


ServiceDep = Annotated[ScanService, Depends(get_service)]
# 1–128 visible ASCII characters (docs/api.md, scan); anything else is a 422 like any invalid input.
IdempotencyHeader = Annotated[
    str | None, Header(alias="X-Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]


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
async def submit(
    body: ScanRequest, user: CurrentUser, service: ServiceDep, idempotency_key: IdempotencyHeader = None
) -> Response:
    # Returned as a response (the model above documents it): no second validation pass of our own output.
    accepted = await service.submit(user.user_id, body, idempotency_key)
    return JSONResponse(accepted.model_dump(), status_code=202)


@router.get("/{job_id}/events", responses=responses((404, "JOB_NOT_FOUND")))
async def events(
    job_id: str,
    user: StreamUser,
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    # 404 before any stream starts; a database read's connection goes back to the pool before streaming.
    job = await service.stream_job(user.user_id, job_id)
    return JobStreamResponse(
        service.events,
        str(job.job_id),  # canonical form: the log is keyed by it
        parse_last_event_id(last_event_id),
        keepalive_seconds=service.settings.sse_keepalive_seconds,
        max_seconds=service.settings.sse_max_seconds,
        finished=job.finished,
        finished_when_idle=job.when_idle,
    )


@router.get(
    "/{job_id}/result",
    response_model=ScanResult,
    responses={202: {"model": ProcessingResponse}, **responses((404, "JOB_NOT_FOUND"))},
)
async def result(job_id: str, user: CurrentUser, service: ServiceDep) -> Response:
    status, body = await service.result(user.user_id, job_id)
    if isinstance(body, bytes):  # the stored result's JSON text, sent as stored
        return Response(body, status_code=status, media_type="application/json")
    return JSONResponse(body, status_code=status, headers={"Retry-After": "2"})
