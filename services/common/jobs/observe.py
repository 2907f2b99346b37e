"""Job metrics read off the job's own events, so every job service (scan, chat) gets them unasked.

Every job writes its progress to its event log (``started``/``completed``/``failed`` per stage, the
first ``queued`` event, the terminal ``done`` holding the result). ``JobObserver`` watches those
appends: a stage's latency is the time between its ``started`` and its ``completed``/``failed``,
counted where both were written (the worker running the stage); ``done`` counts the job by status
and result code and observes its end-to-end time from the result's own timestamps.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from services.common.metrics import (
    JOB_DURATION,
    JOB_OLDEST_AGE,
    JOB_STAGE_DURATION,
    JOBS_FINISHED,
    JOBS_OVERDUE,
    JOBS_SUBMITTED,
)
from services.common.tracing import Span, span

FIRST_EVENT = "queued"
TERMINAL_EVENT = "done"
_STAGE_END = frozenset({"completed", "failed"})
# Stages started on this process and not yet ended (a crashed delivery leaves its start behind).
_MAX_OPEN = 10_000


class JobObserver:
    __slots__ = ("_open", "service")

    def __init__(self, service: str) -> None:
        self.service = service
        self._open: dict[tuple[str, str], float] = {}

    def appended(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        status = data.get("status")
        if status == "started":
            if len(self._open) >= _MAX_OPEN:
                self._open.clear()
            self._open[(job_id, event)] = time.monotonic()
        elif status in _STAGE_END and event != TERMINAL_EVENT:
            began = self._open.pop((job_id, event), None)
            if began is not None:
                JOB_STAGE_DURATION(self.service, event, str(status)).observe(time.monotonic() - began)
        if event == FIRST_EVENT:
            JOBS_SUBMITTED(self.service).inc()
        elif event == TERMINAL_EVENT:
            self._finished(str(status), data.get("result"))

    def _finished(self, status: str, result: Any) -> None:
        code = "ok"
        if isinstance(result, dict):
            error = result.get("error")
            if isinstance(error, dict) and error.get("code"):
                code = str(error["code"])
            try:
                took = datetime.fromisoformat(result["completed_at"]) - datetime.fromisoformat(result["created_at"])
            except (KeyError, TypeError, ValueError):
                took = None
            if took is not None:
                JOB_DURATION(self.service, status).observe(max(0.0, took.total_seconds()))
        JOBS_FINISHED(self.service, status, code).inc()


def stage_span(service: str, stage: str, job_id: str) -> AbstractContextManager[Span | None]:
    """The span of one stage of a job (a child of the delivery's span; model calls nest in it)."""
    return span(f"{service} {stage}", attributes={"eco2.job_id": job_id, "eco2.stage": stage})


def record_backlog(service: str, *, overdue: int, oldest_unfinished: datetime | None, now: datetime) -> None:
    """What a sweep saw: unfinished jobs past their deadline, and the age of the oldest unfinished job."""
    JOBS_OVERDUE(service).set(overdue)
    JOB_OLDEST_AGE(service).set(max(0.0, (now - oldest_unfinished).total_seconds()) if oldest_unfinished else 0.0)
