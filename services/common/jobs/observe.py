"""Job metrics, shared by every job service (scan, chat).

``JobObserver`` reads them off the job's own events, so a job service gets them unasked: the first
``queued`` event counts a submission, the terminal ``done`` (holding the result) counts the job by
status and result code and observes its end-to-end time from the result's own timestamps.
A job whose result does not carry its own timestamps (chat's contract has none) reports its
end-to-end time with ``record_job_duration`` when it emits ``done``.
``stage_span`` wraps one stage's work: its latency and its trace span.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from services.common.tracing import span

FIRST_EVENT = "queued"
TERMINAL_EVENT = "done"


class JobObserver:
    __slots__ = ("service",)

    def __init__(self, service: str) -> None:
        self.service = service

    def appended(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        if event == FIRST_EVENT:
            JOBS_SUBMITTED(self.service).inc()
        elif event == TERMINAL_EVENT:
            self._finished(str(data.get("status")), data.get("result"))

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


def record_job_duration(service: str, status: str, created_at: datetime, completed_at: datetime) -> None:
    """``eco2_job_duration_seconds`` of a finished job, for a service whose ``done`` result lacks the
    ``created_at``/``completed_at`` pair the observer reads (it is observed once either way)."""
    JOB_DURATION(service, status).observe(max(0.0, (completed_at - created_at).total_seconds()))


@contextmanager
def stage_span(service: str, stage: str, job_id: str) -> Iterator[None]:
    """One stage of a job: its latency (``eco2_job_stage_duration_seconds``, outcome completed or
    failed) and its span (a child of the delivery's span; model calls nest in it). A job service
    wraps each stage's work in it — the events are batched, so their times are not the stage's."""
    started = time.perf_counter()
    outcome = "failed"
    with span(f"{service} {stage}", attributes={"eco2.job_id": job_id, "eco2.stage": stage}):
        try:
            yield
            outcome = "completed"
        finally:
            JOB_STAGE_DURATION(service, stage, outcome).observe(time.perf_counter() - started)


def record_backlog(service: str, *, overdue: int, oldest_unfinished: datetime | None, now: datetime) -> None:
    """What a sweep saw: unfinished jobs past their deadline, and the age of the oldest unfinished job."""
    JOBS_OVERDUE(service).set(overdue)
    JOB_OLDEST_AGE(service).set(max(0.0, (now - oldest_unfinished).total_seconds()) if oldest_unfinished else 0.0)
