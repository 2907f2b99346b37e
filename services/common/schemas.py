"""Pydantic building blocks shared by the services' I/O schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

from services.common.clock import iso_ms

# Every datetime leaves the API as ``2026-01-20T03:15:42.120Z``.
UtcDateTime = Annotated[datetime, PlainSerializer(iso_ms, return_type=str, when_used="json")]


class ErrorBody(BaseModel):
    """The body of every error this backend produces (documented on routes)."""

    detail: str
    code: str


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)
