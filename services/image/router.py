"""HTTP layer of the image service (docs/api.md, images), the internal resolve call, and — embedded store
only — the signed upload target and the file route that stand in for S3 and the CDN."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, Response

from services.common.blobs import KEY_PATTERN, LocalBlobStore
from services.common.deps import CurrentUser, SessionDep
from services.common.errors import NotFound, error_response, responses
from services.image.schemas import CallbackRequest, ResolveRequest, UploadRequest, UploadResponse, VerifiedImage
from services.image.service import ImageService

router = APIRouter(tags=["images"])
internal = APIRouter()  # mounted behind the internal token (services.common.app)


def get_service(request: Request) -> ImageService:
    return request.app.state.images


ServiceDep = Annotated[ImageService, Depends(get_service)]


@router.post(
    "/{channel}",
    response_model=UploadResponse,
    responses=responses((400, "INVALID_CHANNEL"), (400, "UNSUPPORTED_CONTENT_TYPE")),
)
async def create_upload(
    channel: str, body: UploadRequest, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> UploadResponse:
    return await service.issue(session, user.user_id, channel, body)


@router.post(
    "/{channel}/callback",
    response_model=VerifiedImage,
    responses=responses(
        (404, "UPLOAD_NOT_FOUND"), (400, "UPLOAD_INCOMPLETE"), (400, "FILE_TOO_LARGE"), (400, "INVALID_IMAGE_CONTENT")
    ),
)
async def upload_callback(
    channel: str, body: CallbackRequest, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> VerifiedImage:
    return await service.callback(session, user.user_id, channel, body.key.strip())


@internal.post("/resolve", response_model=VerifiedImage)
async def resolve(body: ResolveRequest, session: SessionDep, service: ServiceDep) -> VerifiedImage:
    """For scan and chat: is ``image_url`` one of ours, and is the object a verified image?"""
    return await service.resolve(session, body.image_url)


def _local(service: ImageService) -> LocalBlobStore:
    if not isinstance(service.store, LocalBlobStore):
        raise NotFound("Not Found")  # with S3 these URLs never exist
    return service.store


@router.put("/upload/{key:path}", include_in_schema=False)
async def local_put(
    key: str,
    request: Request,
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
    cap = service.settings.local_put_cap_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        return error_response(413, "object too large for this store", "ENTITY_TOO_LARGE")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return error_response(413, "object too large for this store", "ENTITY_TOO_LARGE")
        chunks.append(chunk)
    await store.put(key, b"".join(chunks), content_type)
    return Response(status_code=200)


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def local_file(key: str, service: ServiceDep) -> Response:
    store = _local(service)
    if not KEY_PATTERN.match(key):
        raise NotFound("Not Found")
    info = await store.head(key)
    if info is None:
        raise NotFound("Not Found")
    return FileResponse(
        store.path(key),
        media_type=info.content_type or "application/octet-stream",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
