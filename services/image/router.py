"""HTTP layer of the image service (docs/api.md, images), the internal resolve call, and — embedded store
only — the signed upload target and the file route that stand in for S3 and the CDN."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from services.common.blobs import FILE_SECURITY_HEADERS, KEY_PATTERN, LocalBlobStore
from services.common.deps import CurrentUser, RuntimeDep, SessionDep
from services.common.errors import NotFound, error_response, responses
from services.common.internal import require_internal
from services.common.logging import get_logger
from services.common.routes import DirectRouter, direct, json_body
from services.common.runtime import ServiceRuntime
from services.image.schemas import CallbackRequest, ResolveRequest, UploadRequest, UploadResponse, VerifiedImage
from services.image.service import CHANNELS, ImageService

log = get_logger("eco2.image")
router = APIRouter(tags=["images"])
# Mounted behind the internal token (services.common.app); its resolve route has a direct handler
# (``services.common.routes``: one call per scan submission).
internal = DirectRouter()


async def get_service(request: Request) -> ImageService:
    return request.app.state.images


ServiceDep = Annotated[ImageService, Depends(get_service)]
# Documented as an enum; any other value is the contract's 400 INVALID_CHANNEL (not a 422).
Channel = Annotated[str, Path(json_schema_extra={"enum": list(CHANNELS)})]


@router.post(
    "/{channel}",
    response_model=UploadResponse,
    responses=responses((400, "INVALID_CHANNEL"), (400, "UNSUPPORTED_CONTENT_TYPE")),
)
async def create_upload(
    channel: Channel, body: UploadRequest, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> UploadResponse:
    return await service.issue(session, user.user_id, channel, body)


@router.post(
    "/{channel}/callback",
    response_model=VerifiedImage,
    responses=responses(
        (404, "UPLOAD_NOT_FOUND"),
        (400, "INVALID_CHANNEL"),
        (400, "UPLOAD_INCOMPLETE"),
        (400, "FILE_TOO_LARGE"),
        (400, "INVALID_IMAGE_CONTENT"),
    ),
)
async def upload_callback(
    channel: Channel, body: CallbackRequest, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> VerifiedImage:
    return await service.callback(session, user.user_id, channel, body.key.strip())


async def _resolve_direct(request: Request) -> Response | None:
    await require_internal(request)  # the router's dependency where it is included
    body = await json_body(request, ResolveRequest)
    if body is None:
        return None
    return await _resolve(body, request.app.state.runtime, request.app.state.images)


@internal.post("/resolve", response_model=VerifiedImage)
@direct(_resolve_direct)
async def resolve(body: ResolveRequest, runtime: RuntimeDep, service: ServiceDep) -> Response:
    """For scan and chat: is ``image_url`` one of ours, and is the object a verified image?"""
    return await _resolve(body, runtime, service)


async def _resolve(body: ResolveRequest, runtime: ServiceRuntime, service: ImageService) -> Response:
    db = runtime.db
    assert db is not None
    # A verified upload of this user (every scan of a photo after its callback): one read, no session.
    image = await service.resolve_verified(db, body.image_url, body.user_id)
    if image is None:  # first use (verify now), or refused: the full path, in a unit of work
        async with db.session() as session:
            image = await service.resolve(session, body.image_url, body.user_id)
    return JSONResponse(image.model_dump())


def _local(service: ImageService) -> LocalBlobStore:
    if not isinstance(service.store, LocalBlobStore):
        raise NotFound("Not Found")  # with S3 these URLs never exist
    return service.store


@router.put("/upload/{key:path}", include_in_schema=False)
async def local_put(
    key: str,
    request: Request,
    session: SessionDep,
    service: ServiceDep,
    content_type: Annotated[str, Query()] = "",
    expires: Annotated[str, Query()] = "",
    signature: Annotated[str, Query()] = "",
    # Declared so the browser's preflight for this cross-origin PUT allows it (services.common.cors).
    sent_type: Annotated[str | None, Header(alias="Content-Type")] = None,
) -> Response:
    store = _local(service)
    if not store.verify_upload(key, content_type, expires, signature, sent_type):
        # Storage semantics (what S3 answers for a bad or expired signature), not an API error.
        return error_response(403, "signature invalid, expired or content type mismatch", "SIGNATURE_INVALID")
    # Write-once: a key takes bytes only while its upload is pending, and only once.
    if not await service.accepts_upload(session, key):
        return error_response(412, "this upload is closed", "UPLOAD_CLOSED")
    cap = service.settings.local_put_cap_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        return error_response(413, "object too large for this store", "ENTITY_TOO_LARGE")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                return error_response(413, "object too large for this store", "ENTITY_TOO_LARGE")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client went away mid-upload: nothing is stored, nobody reads an answer.
        log.info("upload_aborted_by_client", key=key, received=size)
        return Response(status_code=400)
    if not await store.put_incoming(key, b"".join(chunks), content_type):
        return error_response(412, "an object was already uploaded for this key", "OBJECT_EXISTS")
    return Response(status_code=200)


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def local_file(key: str, session: SessionDep, service: ServiceDep) -> Response:
    store = _local(service)
    if not KEY_PATTERN.match(key):
        raise NotFound("Not Found")
    # The public copy only: verified bytes. A pending upload is verified on its first read — the
    # client shows ``cdn_url`` right after its PUT, before any scan or callback verified it.
    info = await store.head(key) or await service.verify_on_read(session, key)
    if info is None:
        raise NotFound("Not Found")
    return FileResponse(
        store.path(key),
        media_type=info.content_type or "application/octet-stream",
        headers={"Cache-Control": "public, max-age=31536000, immutable", **FILE_SECURITY_HEADERS},
    )
