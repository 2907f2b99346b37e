"""Asynchronous jobs, shared by every service that runs them (scan today, chat next).

A job is accepted at once (its first event stored), run by a worker from the work queue, and watched
over SSE; its result is stored before the terminal ``done`` event. The parts:

- ``eventlog``: the per-job ordered event log (Redis Streams, or in-process) with live fan-out —
  ``JobEventLog``, ``Frame``, ``event_data``, ``create_job_log``;
- ``queue``: the work queue (RabbitMQ quorum queue, or in-process) — ``JobQueue``, ``create_job_queue``;
- ``stream``: the SSE response of a job (docs/api.md, SSE) with a pluggable replay policy —
  ``JobStreamResponse``, ``parse_last_event_id``, ``replay_all``, ``snapshot_tokens``;
- ``worker``: the worker loop (consume + sweep) — ``run_job_worker``;
- ``observe``: metrics read off the job's events (stages, outcomes) and ``stage_span`` for traces.

Per-user submission limits are a separate kernel port (``services.common.ratelimit``): they guard
the submit endpoints, not the jobs.
"""

from services.common.jobs.eventlog import (
    TERMINAL_EVENT,
    Frame,
    JobEventLog,
    MemoryJobEventLog,
    RedisJobEventLog,
    create_job_log,
    event_data,
)
from services.common.jobs.observe import record_backlog, record_job_duration, stage_span
from services.common.jobs.queue import JobHandler, JobQueue, MemoryJobQueue, RabbitJobQueue, create_job_queue
from services.common.jobs.stream import (
    JobStreamResponse,
    Replay,
    parse_last_event_id,
    replay_all,
    snapshot_tokens,
)
from services.common.jobs.worker import run_job_worker

__all__ = [
    "TERMINAL_EVENT",
    "Frame",
    "JobEventLog",
    "JobHandler",
    "JobQueue",
    "JobStreamResponse",
    "MemoryJobEventLog",
    "MemoryJobQueue",
    "RabbitJobQueue",
    "RedisJobEventLog",
    "Replay",
    "create_job_log",
    "create_job_queue",
    "event_data",
    "parse_last_event_id",
    "record_backlog",
    "record_job_duration",
    "replay_all",
    "run_job_worker",
    "snapshot_tokens",
    "stage_span",
]
