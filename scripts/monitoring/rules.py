"""Alert rules as code: ``python scripts/monitoring/rules.py`` writes
``workloads/monitoring/base/prometheusrule.yaml`` (a PrometheusRule the Prometheus operator loads).

SLOs (per public endpoint group = per service, SSE streams and internal routes left out), over 30 days:
availability 99.9 % (answers that are not 5xx) and latency 99 % (answers within 1 s). Alerts are the
multiwindow, multi-burn-rate pair of the SRE workbook: page when the last hour and the last 5 minutes
both burn the budget 14.4× too fast (2 % of it in an hour), ticket when 6 hours and 30 minutes both
burn it 6× too fast. Every alert's ``runbook`` points at its section of docs/observability.md;
``tests/observability`` unit-tests them with ``promtool test rules``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "workloads/monitoring/base/prometheusrule.yaml"
RUNBOOK = "https://github.com/eco2-team/eco2-backend/blob/main/docs/observability.md"  # clusters/repository
DOMAINS = "auth|my|image|scan|character|location|info|events|chat"
SLO_SELECTOR = 'route=~"/api/.*",route!~".*/events"'
AVAILABILITY_BUDGET = 0.001  # 99.9 %
LATENCY_BUDGET = 0.01  # 99 % within LATENCY_THRESHOLD
LATENCY_THRESHOLD = "1"
WINDOWS = ("5m", "30m", "1h", "6h")


def alert(name: str, expr: str, summary: str, *, severity: str, for_: str | None = None,
          anchor: str | None = None) -> dict[str, Any]:  # fmt: skip
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "runbook_url": f"{RUNBOOK}#{(anchor or name).lower()}"}
    return rule


def slo_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for w in WINDOWS:
        total = f"sum by (service) (rate(eco2_http_requests_total{{{SLO_SELECTOR}}}[{w}]))"
        errors = f'sum by (service) (rate(eco2_http_requests_total{{{SLO_SELECTOR},status=~"5.."}}[{w}]))'
        fast = (f"sum by (service) (rate(eco2_http_request_duration_seconds_bucket"
                f'{{{SLO_SELECTOR},le="{LATENCY_THRESHOLD}"}}[{w}]))')  # fmt: skip
        count = f"sum by (service) (rate(eco2_http_request_duration_seconds_count{{{SLO_SELECTOR}}}[{w}]))"
        rules += [
            {
                "record": f"eco2:slo_availability_burn:rate{w}",
                "expr": f"({errors}) / ({total}) / {AVAILABILITY_BUDGET}",
            },
            {"record": f"eco2:slo_latency_burn:rate{w}", "expr": f"(1 - ({fast}) / ({count})) / {LATENCY_BUDGET}"},
        ]
    for kind, what in (("availability", "5xx answers"), ("latency", f"answers slower than {LATENCY_THRESHOLD} s")):
        rules += [
            alert(f"Eco2{kind.title()}BudgetFastBurn",
                  f"eco2:slo_{kind}_burn:rate1h > 14.4 and eco2:slo_{kind}_burn:rate5m > 14.4",
                  f"{{{{ $labels.service }}}}: {what} burn the 30-day {kind} budget 14.4x too fast",
                  severity="critical", for_="2m"),
            alert(f"Eco2{kind.title()}BudgetSlowBurn",
                  f"eco2:slo_{kind}_burn:rate6h > 6 and eco2:slo_{kind}_burn:rate30m > 6",
                  f"{{{{ $labels.service }}}}: {what} burn the 30-day {kind} budget 6x too fast",
                  severity="warning", for_="15m"),
        ]  # fmt: skip
    return rules


def groups() -> list[dict[str, Any]]:
    return [
        {"name": "eco2.slo", "rules": slo_rules()},
        {"name": "eco2.api", "rules": [
            alert("Eco2ApiDown",
                  f'sum by (namespace) (kube_deployment_status_replicas_available{{namespace=~"{DOMAINS}",deployment!~".*-worker|.*-consumers|relay"}}) == 0',
                  "{{ $labels.namespace }}: no available API replica", severity="critical", for_="5m"),
            alert("Eco2MigrationFailed",
                  f'sum by (namespace, job_name) (kube_job_status_failed{{namespace=~"{DOMAINS}"}}) > 0',
                  "{{ $labels.namespace }}/{{ $labels.job_name }} failed", severity="critical", for_="1m"),
            alert("Eco2WorkerRestarting",
                  f'increase(kube_pod_container_status_restarts_total{{namespace=~"{DOMAINS}",container=~".*-consumers|relay|.*-worker"}}[30m]) > 3',
                  "{{ $labels.namespace }}/{{ $labels.container }} keeps restarting", severity="warning"),
        ]},
        {"name": "eco2.jobs", "rules": [
            alert("Eco2JobsStuckPastDeadline", "max by (service) (eco2_jobs_overdue) > 0",
                  "{{ $labels.service }}: {{ $value }} unfinished job(s) past their deadline", severity="critical",
                  for_="5m"),
            alert("Eco2JobSweeperStalled",
                  "time() - max by (service) (eco2_job_sweep_last_success_timestamp_seconds) > 300",
                  "{{ $labels.service }}: no worker finished a sweep for 5 minutes", severity="critical", for_="2m"),
            alert("Eco2JobQueueBacklog", "max by (service) (eco2_job_queue_depth) > 100",
                  "{{ $labels.service }}: {{ $value }} jobs waiting for a worker", severity="warning", for_="10m"),
            alert("Eco2ModelErrors",
                  "sum by (provider, operation) (rate(eco2_model_errors_total[10m])) "
                  "/ sum by (provider, operation) (rate(eco2_model_request_duration_seconds_count[10m])) > 0.2",
                  "{{ $labels.provider }} {{ $labels.operation }}: more than 20% of model calls fail",
                  severity="warning", for_="10m"),
        ]},
        {"name": "eco2.events", "rules": [
            alert("Eco2DeadLettersGrowing",
                  'sum by (consumer) (increase(eco2_events_consumed_total{outcome="dead_lettered"}[30m])) > 0',
                  "{{ $labels.consumer }}: {{ $value }} event(s) dead-lettered in 30 minutes", severity="warning"),
            alert("Eco2DeadLetters", 'sum by (queue) (rabbitmq_queue_messages{queue=~"eco2\\\\..+\\\\.dlq"}) > 0',
                  "{{ $value }} event(s) parked in {{ $labels.queue }}", severity="warning", for_="5m"),
            alert("Eco2OutboxLag", "max by (producer) (eco2_outbox_lag_seconds) > 60",
                  "{{ $labels.producer }}: the oldest unpublished event is {{ $value }} s old", severity="critical",
                  for_="5m"),
            alert("Eco2RelayDown", 'absent(up{namespace="events"} == 1)',
                  "no outbox relay is scraped up: events are not being published", severity="critical", for_="5m"),
            alert("Eco2QueueBacklog", 'sum by (queue) (rabbitmq_queue_messages_ready{queue=~"eco2\\\\.[^.]+"}) > 1000',
                  "{{ $labels.queue }}: {{ $value }} events waiting", severity="warning", for_="15m"),
        ]},
        {"name": "eco2.stores", "rules": [
            alert("Eco2BrokerDown", "absent(rabbitmq_identity_info)",
                  "RabbitMQ exports nothing: the broker (or its metrics) is down", severity="critical", for_="2m"),
            alert("Eco2DatabaseDown", "absent(cnpg_collector_up == 1)",
                  "no PostgreSQL instance reports up", severity="critical", for_="2m"),
            alert("Eco2DatabaseInstanceDown", "cnpg_collector_up == 0",
                  "PostgreSQL instance {{ $labels.pod }} is down", severity="warning", for_="5m"),
            alert("Eco2RedisDown", "absent(redis_up == 1)", "no Redis instance reports up", severity="critical",
                  for_="2m"),
            alert("Eco2DatabasePoolSaturated",
                  'max by (service) (eco2_db_pool_connections{state="in_use"}) >= max by (service) (eco2_db_pool_size)',
                  "{{ $labels.service }}: a database pool has every connection checked out", severity="warning",
                  for_="10m"),
        ]},
        {"name": "eco2.certificates", "rules": [
            alert("Eco2CertificateExpiring",
                  "min by (node) (kubelet_certificate_manager_client_ttl_seconds) < 14 * 86400",
                  "{{ $labels.node }}: the kubelet's client certificate expires in {{ $value | humanizeDuration }}",
                  severity="warning"),
            alert("Eco2ApiServerCertificateExpiring",
                  'histogram_quantile(0.01, sum by (le) (rate(apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m]))) < 14 * 86400',
                  "clients present certificates to the API server that expire within 14 days", severity="warning",
                  anchor="eco2certificateexpiring"),
        ]},
    ]  # fmt: skip


def render() -> str:
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "eco2", "namespace": "monitoring", "labels": {"app.kubernetes.io/part-of": "eco2"}},
        "spec": {"groups": groups()},
    }
    header = "# Generated by scripts/monitoring/rules.py (edit there). Runbooks: docs/observability.md.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000)


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
