"""Request and response bodies of the scan service (docs/api.md, scan)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator


class ScanRequest(BaseModel):
    image_url: str = Field(min_length=1, max_length=2048)
    user_input: str = Field(default="", max_length=500)
    model: str | None = Field(default=None, max_length=128)

    @field_validator("user_input", mode="before")
    @classmethod
    def _trim(cls, value: Any) -> Any:
        # Trimmed before the length check (docs/api.md, conventions: data); null means "no note".
        if value is None:
            return ""
        return value.strip() if isinstance(value, str) else value

    @field_validator("image_url", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class SubmitResponse(BaseModel):
    job_id: str
    stream_url: str
    result_url: str
    status: str


class ScanError(BaseModel):
    code: str
    message: str
    # The finer cause beside the contract's code: ``VISION_UNAVAILABLE`` (a photo, no vision model
    # configured), ``MODEL_UNAVAILABLE``, ``INVALID_OUTPUT``; null when there is none.
    reason: str | None = None


class ScanResult(BaseModel):
    """Documentation of the result (docs/api.md, scan: pipeline and result); the stored JSON is returned as is."""

    job_id: str
    task_id: str
    status: str
    message: str
    pipeline_result: dict[str, Any] | None
    reward: dict[str, Any] | None
    error: ScanError | None
    created_at: str
    completed_at: str


class ProcessingResponse(BaseModel):
    job_id: str
    status: str
    current_stage: str
    progress: int
    message: str
