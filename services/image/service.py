"""Upload rules of docs/api.md, images: key issuing, verification (exists, size, magic bytes) and the allow-list."""

from __future__ import annotations

import secrets
import typing
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.blobs import KEY_PATTERN, BlobInfo, BlobStore, ObjectChanged, create_blob_store
from services.common.clock import utcnow
from services.common.config import CommonSettings
from services.common.db import Database
from services.common.errors import BadRequest, NotFound
from services.common.logging import get_logger
from services.image.config import ImageSettings
from services.image.models import Upload
from services.image.schemas import UploadRequest, UploadResponse, VerifiedImage
from services.registry import SERVICES

log = get_logger("eco2.image")

CHANNELS = ("scan", "chat", "my")
UPLOADS = typing.cast(Table, Upload.__table__)
_RESOLVE_COLUMNS = (
    UPLOADS.c.user_id,
    UPLOADS.c.status,
    UPLOADS.c.channel,
    UPLOADS.c.content_type,
    UPLOADS.c.size_bytes,
)
# Key prefixes of verified (or service-written) objects: the only ones the CDN may read
# (terraform/modules/s3-images, CloudFront's bucket policy); client bytes land under ``incoming/``.
SERVED_PREFIXES = (*CHANNELS, "generated")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/heif": ".heif",
}
_BY_SUFFIX = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
              ".gif": "image/gif", ".heic": "image/heic", ".heif": "image/heif"}  # fmt: skip
# ISO-BMFF brands of the HEIF family (ISO/IEC 23008-12): image and sequence brands, HEVC or not.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
SNIFF_BYTES = 64


def normalise_content_type(content_type: str, filename: str) -> str:
    value = content_type.split(";")[0].strip().lower()
    if value == "image/jpg":
        value = "image/jpeg"
    if not value:
        # (client) gallery uploads may send no type: infer it from the extension only then.
        value = _BY_SUFFIX.get(PurePosixPath(filename.lower()).suffix, "")
    if value not in EXTENSIONS:
        raise BadRequest(f"unsupported content type {content_type!r}", "UNSUPPORTED_CONTENT_TYPE")
    return value


def sniff(head: bytes) -> str | None:
    """The image type the first bytes prove, or ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 16 and head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        box = head[8 : min(size, len(head))] if size >= 16 else head[8:]
        brands = {box[i : i + 4] for i in range(0, len(box) - 3, 4) if i != 4}  # skip minor_version
        if brands & HEIF_BRANDS:
            return "image/heif"
    return None


def matches(declared: str, sniffed: str | None) -> bool:
    if sniffed is None:
        return False
    if declared in ("image/heic", "image/heif"):
        return sniffed == "image/heif"
    return declared == sniffed


@dataclass
class ImageService:
    settings: ImageSettings
    store: BlobStore
    hosts: frozenset[str]

    @classmethod
    def create(cls, common: CommonSettings, settings: ImageSettings) -> ImageService:
        api = SERVICES["image"].public_url(common.public_api_base_url)
        return cls(settings, create_blob_store(common, settings, api), settings.hosts(api))

    # ------------------------------------------------------------------------------- issuing

    async def issue(
        self, session: AsyncSession, user_id: uuid.UUID, channel: str, body: UploadRequest
    ) -> UploadResponse:
        if channel not in CHANNELS:
            raise BadRequest(f"unknown channel {channel!r}", "INVALID_CHANNEL")
        filename = PurePosixPath(body.filename.replace("\\", "/")).name or "upload"
        content_type = normalise_content_type(body.content_type, filename)
        key = f"{channel}/{secrets.token_hex(16)}{EXTENSIONS[content_type]}"
        expires_in = self.settings.upload_url_ttl_seconds
        upload_url = await self.store.presign_put(key, content_type, expires_in)
        session.add(
            Upload(
                key=key,
                user_id=user_id,
                channel=channel,
                content_type=content_type,
                filename=filename[:255],
                extra=body.metadata,
                status="pending",
                created_at=utcnow(),
            )
        )
        return UploadResponse(
            key=key,
            upload_url=upload_url,
            cdn_url=self.store.public_url(key),
            expires_in=expires_in,
            required_headers={"Content-Type": content_type},
        )

    async def accepts_upload(self, session: AsyncSession, key: str) -> bool:
        """Whether the client may still PUT ``key``: only while its upload is pending."""
        upload = await session.get(Upload, key)
        return upload is not None and upload.status == "pending"

    # ---------------------------------------------------------------------------- verifying

    async def callback(self, session: AsyncSession, user_id: uuid.UUID, channel: str, key: str) -> VerifiedImage:
        if channel not in CHANNELS:
            raise BadRequest(f"unknown channel {channel!r}", "INVALID_CHANNEL")
        upload = await session.get(Upload, key) if KEY_PATTERN.match(key) else None
        if upload is None or upload.user_id != user_id or upload.channel != channel:
            raise NotFound("upload not found", "UPLOAD_NOT_FOUND")
        return await self.verify(session, upload)

    async def verify(self, session: AsyncSession, upload: Upload) -> VerifiedImage:
        """Check a pending upload once; a verified one is never re-checked, a rejected one stays rejected.

        The client's bytes sit in the store's unserved incoming copy; exactly the version checked
        here is promoted to the public key with the verified type (write-once, see ``blobs.py``)."""
        if upload.status == "rejected":
            raise BadRequest("upload was rejected", upload.rejection_code or "UPLOAD_INCOMPLETE")
        if upload.status != "verified":
            info = await self.store.head(upload.key, incoming=True)
            if info is None:
                # Nothing stored yet: the PUT may still be on its way, so the key stays usable.
                raise BadRequest("the object has not been uploaded", "UPLOAD_INCOMPLETE")
            if info.size > self.settings.max_bytes:
                await self._reject(session, upload, "FILE_TOO_LARGE")
                raise BadRequest("the image is larger than 10 MB", "FILE_TOO_LARGE")
            try:
                head = await self.store.read(upload.key, SNIFF_BYTES, incoming=True, version=info.version) or b""
                if not matches(upload.content_type, sniff(head)):
                    await self._reject(session, upload, "INVALID_IMAGE_CONTENT")
                    raise BadRequest("the file is not the declared image type", "INVALID_IMAGE_CONTENT")
                await self.store.promote(upload.key, upload.content_type, info.version)
            except ObjectChanged:
                # Rewritten while being checked: nothing was promoted; the next attempt checks again.
                log.warning("upload_changed_during_verification", key=upload.key)
                raise BadRequest("the object changed while it was verified", "UPLOAD_INCOMPLETE") from None
            upload.status = "verified"
            upload.size_bytes = info.size
            upload.verified_at = utcnow()
            # Committed here, not with the response: once the public copy exists the record must
            # say so, or the sweeper would treat the key as still pending.
            await session.commit()
        return self.describe(upload)

    async def verify_on_read(self, session: AsyncSession, key: str) -> BlobInfo | None:
        """Verify a pending upload because its public URL was requested; the public copy's info, or
        ``None`` when there is nothing (yet) to serve. Whoever asks, the check is the owner's own
        (the same the callback runs), and only verified bytes are served."""
        upload = await session.get(Upload, key)
        if upload is None or upload.status != "pending":
            return None
        try:
            await self.verify(session, upload)
        except BadRequest:
            return None
        return await self.store.head(key)

    async def _reject(self, session: AsyncSession, upload: Upload, code: str) -> None:
        await self.store.delete(upload.key)
        upload.status = "rejected"
        upload.rejection_code = code
        # The 400 answer rolls the request's transaction back, so the rejection commits on its own.
        await session.commit()
        log.info("upload_rejected", key=upload.key, code=code)

    def describe(self, upload: Upload) -> VerifiedImage:
        return VerifiedImage(
            key=upload.key,
            channel=upload.channel,
            cdn_url=self.store.public_url(upload.key),
            content_type=upload.content_type,
            size_bytes=upload.size_bytes or 0,
        )

    # ---------------------------------------------------------------------------- allow-list

    def key_from_url(self, url: str) -> str:
        """The issued key an ``image_url`` points at, or IMAGE_URL_NOT_ALLOWED (docs/api.md, images: allow-list)."""
        refused = BadRequest("image_url is not an image of this service", "IMAGE_URL_NOT_ALLOWED")
        try:
            parts = urlsplit(url.strip())
            port = parts.port  # raises on a malformed port
        except ValueError:
            raise refused from None
        base = urlsplit(self.store.public_base)
        # https only; plain http is accepted only when the configured public base is itself http
        # (the embedded store on a laptop), never otherwise.
        if parts.scheme not in {"https", base.scheme}:
            raise refused
        if (parts.hostname or "").lower() not in self.hosts or parts.username or parts.password:
            raise refused
        if port not in (None, base.port) or parts.query or parts.fragment:
            raise refused
        prefix = base.path.rstrip("/") + "/"
        if not parts.path.startswith(prefix):
            raise refused
        key = parts.path[len(prefix) :]
        if not KEY_PATTERN.match(key):
            raise refused
        return key

    async def resolve_verified(self, db: Database, url: str, user_id: uuid.UUID) -> VerifiedImage | None:
        """The common case of ``resolve`` in one autocommit read: the user's own upload, already
        verified (a verified upload is never re-checked). ``None``: the full path decides (unknown
        key, someone else's upload, pending — the first use verifies it — or rejected)."""
        key = self.key_from_url(url)
        async with db.autocommit() as conn:
            row = (await conn.execute(select(*_RESOLVE_COLUMNS).where(UPLOADS.c.key == key))).first()
        if row is None or row.user_id != user_id or row.status != "verified":
            return None
        return VerifiedImage(
            key=key,
            channel=row.channel,
            cdn_url=self.store.public_url(key),
            content_type=row.content_type,
            size_bytes=row.size_bytes or 0,
        )

    async def resolve(self, session: AsyncSession, url: str, user_id: uuid.UUID) -> VerifiedImage:
        key = self.key_from_url(url)
        upload = await session.get(Upload, key)
        if upload is not None and upload.user_id != user_id:
            # Someone else's upload: refused like a foreign URL, and never verified on their behalf.
            raise BadRequest("image_url is not an image of this service", "IMAGE_URL_NOT_ALLOWED")
        if upload is None:
            if key.startswith("generated/") and await self.store.head(key) is not None:
                # Written server-side by chat image generation: verified by construction.
                info = await self.store.head(key)
                assert info is not None
                return VerifiedImage(
                    key=key,
                    channel="generated",
                    cdn_url=self.store.public_url(key),
                    content_type=info.content_type or "image/png",
                    size_bytes=info.size,
                )
            raise BadRequest("image_url is not an image of this service", "IMAGE_URL_NOT_ALLOWED")
        return await self.verify(session, upload)

    # ------------------------------------------------------------------------------ clean-up

    async def sweep_pending(self, db: Database) -> int:
        """Delete objects still pending past the TTL (docs/api.md, images: 24 h), and every incoming
        copy whose upload is no longer pending (a re-PUT after verification or rejection)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.pending_ttl_seconds)
        async with db.session() as session:
            rows = (
                await session.execute(
                    select(Upload).where(Upload.status == "pending", Upload.created_at < cutoff).limit(500)
                )
            ).scalars()
            count = 0
            for upload in rows:
                await self.store.delete(upload.key)
                upload.status = "rejected"
                upload.rejection_code = "UPLOAD_INCOMPLETE"
                count += 1
        if count:
            log.info("pending_uploads_expired", count=count)
        return count + await self.sweep_incoming(db)

    async def sweep_incoming(self, db: Database) -> int:
        keys = await self.store.incoming_keys()
        if not keys:
            return 0
        async with db.session() as session:
            pending = set(
                (await session.execute(select(Upload.key).where(Upload.key.in_(keys), Upload.status == "pending")))
                .scalars()
                .all()
            )
        stale = [key for key in keys if key not in pending]
        for key in stale:
            await self.store.delete_incoming(key)
        if stale:
            log.info("stale_incoming_objects_deleted", count=len(stale))
        return len(stale)

    async def delete_user(self, session: AsyncSession, user_id: uuid.UUID) -> int:
        uploads = (await session.execute(select(Upload).where(Upload.user_id == user_id))).scalars().all()
        for upload in uploads:
            await self.store.delete(upload.key)
            await session.delete(upload)
        return len(uploads)
