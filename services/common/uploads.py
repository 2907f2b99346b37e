"""Checking an ``image_url`` a client submits (scan, chat): the allow-list and first-use verification.

The image service owns the upload records, so it answers (``POST /internal/v1/images/resolve``);
this is the one client of that call (docs/api.md, images: image URL allow-list). A verified upload
stays verified, so answers are cached for a few minutes per process — a user's repeated sends of one
photo skip the internal hop — keyed by user too: an upload is only its uploader's to use.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.common.errors import BadRequest, ServiceUnavailable
from services.common.internal import internal_headers
from services.common.logging import get_logger

log = get_logger("eco2.uploads")

VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 300.0
IMAGE_CODES = frozenset({"IMAGE_URL_NOT_ALLOWED", "UPLOAD_INCOMPLETE", "FILE_TOO_LARGE", "INVALID_IMAGE_CONTENT"})


@dataclass
class ImageResolver:
    http: httpx.AsyncClient
    resolve_url: str  # the image service's internal resolve route (callers build it from the registry)
    internal_token: str
    timeout_seconds: float = 5.0
    _verified: dict[tuple[uuid.UUID, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)

    async def resolve(self, image_url: str, user_id: uuid.UUID) -> dict[str, Any]:
        """The verified upload (``key``, ``content_type``…), or the contract's 400 with its code."""
        cache_key = (user_id, image_url)
        cached = self._verified.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self.http.post(
                self.resolve_url,
                json={"image_url": image_url, "user_id": str(user_id)},
                headers=internal_headers(self.internal_token),
                timeout=self.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            log.warning("image_service_unreachable", error=repr(exc))
            raise ServiceUnavailable("image service unavailable") from exc
        if response.status_code == 200:
            image = dict(response.json())
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))  # oldest first (insertion order)
            self._verified[cache_key] = (time.monotonic() + VERIFIED_CACHE_SECONDS, image)
            return image
        try:
            code = response.json().get("code")
        except ValueError:
            code = None
        if response.status_code == 400 and code in IMAGE_CODES:
            raise BadRequest(str(response.json().get("detail", "image refused")), code)
        if response.status_code == 422:
            raise BadRequest("image_url is not an image of this service", "IMAGE_URL_NOT_ALLOWED")
        log.warning("image_service_error", status=response.status_code, code=code)
        raise ServiceUnavailable("image service unavailable")
