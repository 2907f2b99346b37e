"""Request and response bodies of the image service (docs/api.md, images)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator


class UploadRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="", max_length=255)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, ensure_ascii=False).encode()) > 2048:
            raise ValueError("metadata must be at most 2 KB of JSON")
        return value


class UploadResponse(BaseModel):
    key: str
    upload_url: str
    cdn_url: str
    expires_in: int
    required_headers: dict[str, str]


class CallbackRequest(BaseModel):
    key: str = Field(min_length=3, max_length=512)
    etag: str | None = None


class VerifiedImage(BaseModel):
    key: str
    channel: str
    cdn_url: str
    content_type: str
    size_bytes: int
    status: str = "verified"


class ResolveRequest(BaseModel):
    image_url: str = Field(max_length=2048)
