"""Prometheus metrics shared by every service (one registry per process).

Every moving part has its metrics here, so a process exports the same names whichever services and
workers it runs (``eco2 dev`` runs them all; production one per container). Label sets are bounded:
service, route template, stage, provider, consumer, outcome — never a user, job or event id.

Hot paths never call ``.labels()`` per event (it takes a lock and builds a key): ``Children`` caches
each label combination's child once, and the SSE stream keeps its own children for its lifetime.
Dashboards (``workloads/monitoring/base/dashboards``) and alerts (``prometheusrule.yaml``) name only
metrics listed here or exported by the data stores' exporters; ``tests/observability`` keeps it so.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

M = TypeVar("M", Counter, Gauge, Histogram)


class Children(Generic[M]):
    """The children of one metric by label values, created once (``labels()`` is not free)."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


# ------------------------------------------------------------------------------------------- HTTP

HTTP_REQUESTS = Counter("eco2_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "eco2_http_request_duration_seconds",
    "HTTP request latency (until the response is complete)",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# ------------------------------------------------------------------------------ jobs (scan, chat)

_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
JOBS_SUBMITTED = Children(Counter("eco2_jobs_submitted_total", "Jobs accepted (first event stored)", ["service"]))
JOBS_FINISHED = Children(
    Counter("eco2_jobs_finished_total", "Jobs finished, by status and result code", ["service", "status", "code"])
)
JOB_DURATION = Children(
    Histogram(
        "eco2_job_duration_seconds",
        "From a job's acceptance to its result",
        ["service", "status"],
        buckets=_STAGE_BUCKETS,
    )
)
JOB_STAGE_DURATION = Children(
    Histogram(
        "eco2_job_stage_duration_seconds",
        "One stage of a job, from its started to its completed/failed event",
        ["service", "stage", "outcome"],
        buckets=_STAGE_BUCKETS,
    )
)
JOB_DELIVERIES = Children(
    Counter(
        "eco2_job_deliveries_total",
        "Job handler runs: ok, or failed (retried in place during an outage, or delivered again)",
        ["service", "outcome"],
    )
)
JOBS_IN_PROGRESS = Children(Gauge("eco2_jobs_in_progress", "Jobs a worker process is running now", ["service"]))
JOB_QUEUE_DEPTH = Children(Gauge("eco2_job_queue_depth", "Jobs waiting in the work queue", ["service"]))
JOB_OLDEST_AGE = Children(
    Gauge("eco2_job_oldest_unfinished_age_seconds", "Age of the oldest unfinished job (0 when none)", ["service"])
)
JOB_SWEEP_SUCCESS = Children(
    Gauge(
        "eco2_job_sweep_last_success_timestamp_seconds",
        "When a worker's sweeper (deadlines, requeues, retention) last finished a pass",
        ["service"],
    )
)
JOBS_OVERDUE = Children(
    Gauge("eco2_jobs_overdue", "Unfinished jobs past their deadline at the last sweep", ["service"])
)

# ---------------------------------------------------------------------------------------- models

MODEL_LATENCY = Children(
    Histogram(
        "eco2_model_request_duration_seconds",
        "Calls to a model provider (vision classification, answer)",
        ["provider", "operation", "outcome"],
        buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
    )
)
MODEL_ERRORS = Children(
    Counter("eco2_model_errors_total", "Failed model calls by kind", ["provider", "operation", "kind"])
)

# ---------------------------------------------------------------------------------------- events

OUTBOX_LAG = Children(
    Gauge("eco2_outbox_lag_seconds", "Age of the oldest unpublished outbox row at the relay's last pass", ["producer"])
)
OUTBOX_PUBLISHED = Children(Counter("eco2_outbox_published_total", "Outbox rows published", ["producer"]))
OUTBOX_FAILURES = Children(
    Counter("eco2_outbox_publish_failures_total", "Publishes the broker did not confirm", ["producer"])
)
EVENTS_CONSUMED = Children(
    Counter(
        "eco2_events_consumed_total",
        "Events taken by a consumer: applied, duplicate (inbox), failed (retried), dead_lettered",
        ["consumer", "outcome"],
    )
)
EVENT_LAG = Children(
    Histogram(
        "eco2_event_consume_lag_seconds",
        "From an event's occurrence (outbox commit) to its consumer's commit",
        ["consumer"],
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
    )
)

# ------------------------------------------------------------------------------------------- SSE

SSE_OPEN = Children(Gauge("eco2_sse_streams_open", "Open SSE streams", ["service"]))
SSE_FRAMES = Children(
    Counter("eco2_sse_frames_sent_total", "SSE frames written: replay, live, keepalive, error", ["service", "kind"])
)

# ------------------------------------------------------------------------------ limits, auth, data

RATE_LIMIT_REFUSALS = Children(
    Counter("eco2_rate_limit_refusals_total", "Requests refused by a rate limit (429)", ["limiter"])
)
AUTH_LOGINS = Children(Counter("eco2_auth_logins_total", "Login callbacks by provider", ["provider", "outcome"]))
AUTH_REFRESHES = Children(
    Counter(
        "eco2_auth_refreshes_total",
        "Refreshes: rotated, grace (a concurrent refresh's pair), refused, reuse_detected",
        ["outcome"],
    )
)
LOCATION_QUERY = Children(
    Histogram(
        "eco2_location_query_duration_seconds",
        "Location searches (nearby, keyword)",
        ["kind"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
)
NEWS_REFRESH = Children(
    Counter("eco2_news_refresh_total", "News source refreshes by provider", ["provider", "outcome"])
)


class _PoolCollector(Collector):
    """Connections of every live database pool of the process, read at scrape time (no hot-path cost)."""

    def __init__(self) -> None:
        self.databases: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "eco2_db_pool_connections", "Database pool connections by state", labels=["service", "state"]
        )
        size = GaugeMetricFamily(
            "eco2_db_pool_size", "Database pool size: the most connections it holds (no overflow)", labels=["service"]
        )
        totals: dict[str, list[int]] = {}
        for database in list(self.databases):
            pool = database.engine.sync_engine.pool
            checkedout = getattr(pool, "checkedout", None)
            if checkedout is None:
                continue
            entry = totals.setdefault(database.schema, [0, 0, 0])
            entry[0] += int(checkedout())
            entry[1] += int(pool.checkedin())
            entry[2] += int(pool.size())
        for service, (in_use, idle, pool_size) in sorted(totals.items()):
            family.add_metric([service, "in_use"], in_use)
            family.add_metric([service, "idle"], idle)
            size.add_metric([service], pool_size)
        yield family
        yield size


DB_POOLS = _PoolCollector()
REGISTRY.register(DB_POOLS)


def track_pool(database: Any) -> None:
    """Report ``database``'s pool in ``eco2_db_pool_connections`` while it lives."""
    DB_POOLS.databases.add(database)


@contextlib.contextmanager
def timed(child: Any) -> Iterator[None]:
    """Observe the block's duration on a histogram child (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        child.observe(time.perf_counter() - started)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod network
    """A worker's ``/metrics`` on its own port (a daemon thread; workers have no HTTP server)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host)
