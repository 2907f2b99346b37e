"""Time helpers: one place decides what "now" is and how timestamps are written."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_ms(value: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a ``Z`` suffix, as the contract requires."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def epoch() -> float:
    return time.time()
