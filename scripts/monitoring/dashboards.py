"""Grafana dashboards as code: ``python scripts/monitoring/dashboards.py`` writes
``workloads/monitoring/base/dashboards/*.json`` (provisioned by the monitoring overlay's ConfigMap).

Every query names metrics of ``services/common/metrics.py`` (``eco2_*``) or of the exporters the
cluster runs (RabbitMQ's Prometheus plugin, CloudNativePG, the Redis exporter, node-exporter,
kube-state-metrics); ``tests/observability`` checks the ``eco2_*`` ones against a live ``/metrics``.
Every panel reads the ``datasource`` variable, so a dashboard works against any Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "workloads/monitoring/base/dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SSE = 'route!~".*/events"'  # streams are long by design: left out of latency


def _variables(*extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
            },
            *extra,
        ]
    }


def _label_var(name: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
    }


class Board:
    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid, self.title, self.description = uid, title, description
        self.panels: list[dict[str, Any]] = []
        self.y = 0
        self.x = 0
        self.variables: list[dict[str, Any]] = []

    def row(self, title: str) -> Board:
        if self.x:
            self.y, self.x = self.y + 8, 0
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1
        return self

    def panel(
        self,
        title: str,
        *exprs: tuple[str, str],
        unit: str = "short",
        kind: str = "timeseries",
        width: int = 8,
        description: str = "",
    ) -> Board:
        if self.x + width > 24:
            self.y, self.x = self.y + 8, 0
        targets = [
            {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ]
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": kind,
                "title": title,
                "description": description,
                "datasource": DS,
                "targets": targets,
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
            }
        )
        self.x += width
        return self

    def json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["eco2"],
            "editable": False,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "timezone": "browser",
            "time": {"from": "now-6h", "to": "now"},
            "templating": _variables(*self.variables),
            "annotations": {"list": []},
            "panels": self.panels,
        }


def overview() -> Board:
    b = Board("eco2-overview", "Eco² overview", "Golden signals per service: traffic, errors, latency, saturation.")
    b.variables.append(_label_var("service", "label_values(eco2_http_requests_total, service)"))
    sel = 'service=~"$service"'
    b.row("Traffic and errors")
    b.panel(
        "Requests per second",
        (f"sum by (service) (rate(eco2_http_requests_total{{{sel}}}[5m]))", "{{service}}"),
        unit="reqps",
    )
    b.panel(
        "5xx share",
        (
            f'sum by (service) (rate(eco2_http_requests_total{{{sel},status=~"5.."}}[5m])) / '
            f"sum by (service) (rate(eco2_http_requests_total{{{sel}}}[5m]))",
            "{{service}}",
        ),
        unit="percentunit",
    )
    b.panel(
        "4xx and 429 per second",
        (
            f'sum by (service, status) (rate(eco2_http_requests_total{{{sel},status=~"4.."}}[5m]))',
            "{{service}} {{status}}",
        ),
        unit="reqps",
    )
    b.row("Latency and saturation")
    b.panel(
        "p95 latency (without SSE)",
        (
            f"histogram_quantile(0.95, sum by (service, le) (rate(eco2_http_request_duration_seconds_bucket{{{sel},{SSE}}}[5m])))",
            "{{service}}",
        ),
        unit="s",
    )
    b.panel(
        "p99 latency (without SSE)",
        (
            f"histogram_quantile(0.99, sum by (service, le) (rate(eco2_http_request_duration_seconds_bucket{{{sel},{SSE}}}[5m])))",
            "{{service}}",
        ),
        unit="s",
    )
    b.panel(
        "Availability SLO: error budget burn (1h)",
        (f"eco2:slo_availability_burn:rate1h{{{sel}}}", "{{service}}"),
        description="1 = spending the 30-day budget exactly; alerts fire at 14.4 (fast) and 6 (slow).",
    )
    b.panel(
        "Scrape targets up",
        (
            'sum by (namespace, job) (up{namespace=~"auth|my|image|scan|character|location|info|events|chat"})',
            "{{job}}",
        ),
    )
    b.panel(
        "DB pool connections in use", ('sum by (service) (eco2_db_pool_connections{state="in_use"})', "{{service}}")
    )
    b.panel(
        "Pods restarting (30 m)",
        (
            'sum by (namespace, container) (increase(kube_pod_container_status_restarts_total{namespace=~"auth|my|image|scan|character|location|info|events|chat"}[30m]))',
            "{{namespace}}/{{container}}",
        ),
    )
    b.row("Accounts and limits")
    b.panel(
        "Logins by provider and outcome",
        ("sum by (provider, outcome) (rate(eco2_auth_logins_total[5m]))", "{{provider}} {{outcome}}"),
        unit="reqps",
    )
    b.panel(
        "Refreshes by outcome (reuse = a stolen token)",
        ("sum by (outcome) (rate(eco2_auth_refreshes_total[5m]))", "{{outcome}}"),
        unit="reqps",
    )
    b.panel(
        "Rate-limit refusals",
        ("sum by (limiter) (rate(eco2_rate_limit_refusals_total[5m]))", "{{limiter}}"),
        unit="reqps",
    )
    b.panel(
        "Location query p95",
        (
            "histogram_quantile(0.95, sum by (kind, le) (rate(eco2_location_query_duration_seconds_bucket[5m])))",
            "{{kind}}",
        ),
        unit="s",
    )
    b.panel(
        "News refreshes by provider",
        ("sum by (provider, outcome) (increase(eco2_news_refresh_total[1h]))", "{{provider}} {{outcome}}"),
    )
    return b


def pipeline(service: str, title: str) -> Board:
    b = Board(
        f"eco2-{service}-pipeline",
        title,
        f"The {service} job pipeline stage by stage: intake, queue, stages, model calls, outcomes.",
    )
    s = f'service="{service}"'
    b.row("Intake and outcome")
    b.panel(
        "Jobs submitted / finished per second",
        (f"sum(rate(eco2_jobs_submitted_total{{{s}}}[5m]))", "submitted"),
        (f"sum by (status) (rate(eco2_jobs_finished_total{{{s}}}[5m]))", "{{status}}"),
        unit="reqps",
    )
    b.panel(
        "Failed jobs by code",
        (f'sum by (code) (rate(eco2_jobs_finished_total{{{s},status="failed"}}[5m]))', "{{code}}"),
        unit="reqps",
    )
    b.panel(
        "Job duration p50 / p95",
        (f"histogram_quantile(0.5, sum by (le) (rate(eco2_job_duration_seconds_bucket{{{s}}}[5m])))", "p50"),
        (f"histogram_quantile(0.95, sum by (le) (rate(eco2_job_duration_seconds_bucket{{{s}}}[5m])))", "p95"),
        unit="s",
    )
    b.row("Stages")
    b.panel(
        "Stage p95",
        (
            f"histogram_quantile(0.95, sum by (stage, le) (rate(eco2_job_stage_duration_seconds_bucket{{{s}}}[5m])))",
            "{{stage}}",
        ),
        unit="s",
        width=12,
    )
    b.panel(
        "Stage failures per second",
        (f'sum by (stage) (rate(eco2_job_stage_duration_seconds_count{{{s},outcome="failed"}}[5m]))', "{{stage}}"),
        unit="reqps",
        width=12,
    )
    b.row("Queue and workers")
    b.panel("Queue depth", (f"sum(eco2_job_queue_depth{{{s}}})", "waiting"))
    b.panel("Oldest unfinished job", (f"max(eco2_job_oldest_unfinished_age_seconds{{{s}}})", "age"), unit="s")
    b.panel("Overdue jobs (past deadline)", (f"max(eco2_jobs_overdue{{{s}}})", "overdue"))
    b.panel("Jobs in progress", (f"sum(eco2_jobs_in_progress{{{s}}})", "running"))
    b.panel(
        "Handler failures per second",
        (f'sum(rate(eco2_job_deliveries_total{{{s},outcome="failed"}}[5m]))', "failed"),
        unit="reqps",
    )
    b.panel(
        "Since the last sweep",
        (f"time() - max(eco2_job_sweep_last_success_timestamp_seconds{{{s}}})", "seconds"),
        unit="s",
    )
    b.row("Models")
    b.panel(
        "Model call p95 by provider",
        (
            "histogram_quantile(0.95, sum by (provider, operation, le) (rate(eco2_model_request_duration_seconds_bucket[5m])))",
            "{{provider}} {{operation}}",
        ),
        unit="s",
        width=12,
    )
    b.panel(
        "Model errors by kind",
        (
            "sum by (provider, operation, kind) (rate(eco2_model_errors_total[5m]))",
            "{{provider}} {{operation}} {{kind}}",
        ),
        unit="reqps",
        width=12,
    )
    b.row("Streams")
    b.panel("SSE streams open", (f"sum(eco2_sse_streams_open{{{s}}})", "open"), width=12)
    b.panel(
        "SSE frames per second",
        (f"sum by (kind) (rate(eco2_sse_frames_sent_total{{{s}}}[5m]))", "{{kind}}"),
        unit="reqps",
        width=12,
    )
    return b


def events() -> Board:
    b = Board("eco2-events", "Eco² events", "Outbox → relay → RabbitMQ → consumers, and dead letters.")
    b.row("Outbox and relay")
    b.panel(
        "Outbox lag (oldest unpublished row)", ("max by (producer) (eco2_outbox_lag_seconds)", "{{producer}}"), unit="s"
    )
    b.panel(
        "Published per second",
        ("sum by (producer) (rate(eco2_outbox_published_total[5m]))", "{{producer}}"),
        unit="reqps",
    )
    b.panel(
        "Unconfirmed publishes",
        ("sum by (producer) (rate(eco2_outbox_publish_failures_total[5m]))", "{{producer}}"),
        unit="reqps",
    )
    b.row("Consumers")
    b.panel(
        "Consumed by outcome",
        ("sum by (consumer, outcome) (rate(eco2_events_consumed_total[5m]))", "{{consumer}} {{outcome}}"),
        unit="reqps",
    )
    b.panel(
        "Consumer lag p95 (occurred → applied)",
        (
            "histogram_quantile(0.95, sum by (consumer, le) (rate(eco2_event_consume_lag_seconds_bucket[5m])))",
            "{{consumer}}",
        ),
        unit="s",
    )
    b.panel(
        "Dead-lettered (1 h)",
        ('sum by (consumer) (increase(eco2_events_consumed_total{outcome="dead_lettered"}[1h]))', "{{consumer}}"),
    )
    b.row("Broker")
    b.panel(
        "Ready messages per queue",
        ('sum by (queue) (rabbitmq_queue_messages_ready{queue=~"eco2\\\\..+"})', "{{queue}}"),
    )
    b.panel(
        "Dead-letter queues", ('sum by (queue) (rabbitmq_queue_messages{queue=~"eco2\\\\..+\\\\.dlq"})', "{{queue}}")
    )
    b.panel("Unacked messages", ('sum by (queue) (rabbitmq_queue_messages_unacked{queue=~"eco2\\\\..+"})', "{{queue}}"))
    return b


def sse() -> Board:
    b = Board("eco2-sse", "Eco² SSE", "Server-Sent Event streams of jobs (scan, chat).")
    b.variables.append(_label_var("service", "label_values(eco2_sse_streams_open, service)"))
    s = 'service=~"$service"'
    b.panel("Streams open", (f"sum by (service) (eco2_sse_streams_open{{{s}}})", "{{service}}"), width=12)
    b.panel(
        "Frames per second by kind",
        (f"sum by (service, kind) (rate(eco2_sse_frames_sent_total{{{s}}}[5m]))", "{{service}} {{kind}}"),
        unit="reqps",
        width=12,
    )
    b.panel(
        "Error frames per second (timeout, temporary, connection_reset)",
        (f'sum by (service) (rate(eco2_sse_frames_sent_total{{{s},kind="error"}}[5m]))', "{{service}}"),
        unit="reqps",
        width=12,
    )
    b.panel(
        "Stream opens per second",
        (f'sum by (service) (rate(eco2_http_requests_total{{{s},route=~".*/events"}}[5m]))', "{{service}}"),
        unit="reqps",
        width=12,
    )
    return b


def data_stores() -> Board:
    b = Board("eco2-data-stores", "Eco² data stores", "PostgreSQL (CloudNativePG), Redis, RabbitMQ and the pools.")
    b.row("PostgreSQL")
    b.panel("Instances up", ("sum by (pod) (cnpg_collector_up)", "{{pod}}"))
    b.panel("Backends", ("sum by (datname) (cnpg_backends_total)", "{{datname}}"))
    b.panel(
        "Transactions per second",
        ("sum by (datname) (rate(cnpg_pg_stat_database_xact_commit[5m]))", "{{datname}}"),
        unit="reqps",
    )
    b.panel(
        "Pool connections by service", ("sum by (service, state) (eco2_db_pool_connections)", "{{service}} {{state}}")
    )
    b.panel("Last archived WAL age", ("max(cnpg_pg_stat_archiver_seconds_since_last_archival)", "seconds"), unit="s")
    b.row("Redis")
    b.panel("Redis up", ("sum by (pod) (redis_up)", "{{pod}}"))
    b.panel("Memory used", ("sum by (pod) (redis_memory_used_bytes)", "{{pod}}"), unit="bytes")
    b.panel("Connected clients", ("sum by (pod) (redis_connected_clients)", "{{pod}}"))
    b.row("RabbitMQ")
    b.panel("Connections", ("sum(rabbitmq_connections)", "connections"))
    b.panel("Messages ready", ("sum(rabbitmq_queue_messages_ready)", "ready"))
    b.panel("Memory alarm", ("max(rabbitmq_alarms_memory_used_watermark)", "alarm"))
    return b


def nodes() -> Board:
    b = Board("eco2-nodes", "Eco² nodes", "The cluster's nodes (node-exporter, kube-state-metrics).")
    b.panel(
        "CPU busy",
        ('1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', "{{instance}}"),
        unit="percentunit",
        width=12,
    )
    b.panel(
        "Memory available",
        ("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}"),
        unit="percentunit",
        width=12,
    )
    b.panel(
        "Disk available",
        (
            'min by (instance) (node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"})',
            "{{instance}}",
        ),
        unit="percentunit",
        width=12,
    )
    b.panel("Nodes ready", ('sum(kube_node_status_condition{condition="Ready",status="true"})', "ready"), width=12)
    return b


BOARDS = {
    "overview": overview,
    "scan-pipeline": lambda: pipeline("scan", "Eco² scan pipeline"),
    "chat-pipeline": lambda: pipeline("chat", "Eco² chat pipeline"),
    "events": events,
    "sse": sse,
    "data-stores": data_stores,
    "nodes": nodes,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(build().json(), indent=2, ensure_ascii=False) + "\n"
        for name, build in BOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
    print(f"wrote {len(BOARDS)} dashboards to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
