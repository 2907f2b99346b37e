"""Request and response bodies of the image service (docs/api.md, images)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel, Field, field_validator

from services.common.schemas import Text


class UploadRequest(BaseModel):
    filename: Text = Field(min_length=1, max_length=255)
    content_type: Text = Field(default="", max_length=255)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, ensure_ascii=False).encode()) > 2048:
            raise ValueError("metadata must be at most 2 KB of JSON")
        # Opaque client data, kept verbatim as JSON (escaped, so any string is safe to store): not
        # text this backend reads, so the control-character rule of text inputs does not apply.
        return value


class UploadResponse(BaseModel):
    key: str
    upload_url: str
    cdn_url: str
    expires_in: int
    required_headers: dict[str, str]


class CallbackRequest(BaseModel):
    key: Text = Field(min_length=3, max_length=512)
    etag: Text | None = Field(default=None, max_length=512)


class VerifiedImage(BaseModel):
    key: str
    channel: str
    cdn_url: str
    content_type: str
    size_bytes: int
    status: str = "verified"


class ResolveRequest(BaseModel):
    image_url: Text = Field(max_length=2048)
    # The submitting user: an upload is usable only by its uploader (another user's ``cdn_url`` is
    # refused without touching their upload).
    user_id: uuid.UUID
