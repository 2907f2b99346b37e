"""Time helpers: one place decides what "now" is and how timestamps are written.

``CLOCK`` is the process's clock. It reads the system clock; tests move it forward with
``CLOCK.advance(seconds)`` instead of sleeping, and every expiry this code decides for itself (the
embedded key-value store's TTLs, remembered and decoded tokens, timestamps) follows. Expiries kept
by an external store (Redis TTLs) run on that store's own clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0  # seconds this clock is ahead of the system clock

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


CLOCK = Clock()


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now + timedelta(seconds=CLOCK.offset) if CLOCK.offset else now


def iso_ms(value: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a ``Z`` suffix (docs/api.md, conventions: data)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def epoch() -> float:
    return CLOCK.time()
