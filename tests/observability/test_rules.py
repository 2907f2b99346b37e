"""The alert rules, unit-tested with ``promtool test rules`` against synthetic series: each alert fires
on the failure it is written for, with its summary rendered, and stays quiet on a healthy system.

Needs promtool (Debian's ``prometheus`` package: ``bash scripts/ci/ensure_promtool.sh``); without it
the test is skipped with that reason locally, and ``.ci/run`` fails on that skip."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts/monitoring"))
import rules  # noqa: E402

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="no promtool: bash scripts/ci/ensure_promtool.sh installs it (CI does)"
)
HTTP = 'eco2_http_requests_total{{service="{service}",method="POST",route="/api/v1/{service}",status="{status}"}}'
BUCKET = (
    'eco2_http_request_duration_seconds_bucket{{service="{service}",method="POST",route="/api/v1/{service}",le="{le}"}}'
)
COUNT = 'eco2_http_request_duration_seconds_count{{service="{service}",method="POST",route="/api/v1/{service}"}}'


def _runbook(alertname: str) -> str:
    for group in rules.groups():
        for rule in group["rules"]:
            if rule.get("alert") == alertname:
                return str(rule["annotations"]["runbook_url"])
    raise AssertionError(f"no alert {alertname}")


def _expect(alertname: str, summary: str, **labels: str) -> dict[str, Any]:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "runbook_url": _runbook(alertname)}}


def _case(series: dict[str, str], checks: list[tuple[str, str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "alert_rule_test": [
            {"eval_time": at, "alertname": name, "exp_alerts": expected} for at, name, expected in checks
        ],
    }


def cases() -> list[dict[str, Any]]:
    return [
        # scan answers 10% 5xx for over an hour (burn 100x); auth answers none: only scan pages.
        _case(
            {
                HTTP.format(service="scan", status="200"): "0+54x90",
                HTTP.format(service="scan", status="503"): "0+6x90",
                HTTP.format(service="auth", status="200"): "0+60x90",
            },
            [
                ("2m", "Eco2AvailabilityBudgetFastBurn", []),  # pending: not yet 2 minutes of burning
                ("75m", "Eco2AvailabilityBudgetFastBurn", [
                    _expect("Eco2AvailabilityBudgetFastBurn",
                            "scan: 5xx answers burn the 30-day availability budget 14.4x too fast",
service="scan", severity="critical")]),
            ],
        ),
        # Half of location's answers take more than 1 s.
        _case(
            {
                BUCKET.format(service="location", le="1"): "0+30x90",
                BUCKET.format(service="location", le="+Inf"): "0+60x90",
                COUNT.format(service="location"): "0+60x90",
            },
            [("75m", "Eco2LatencyBudgetFastBurn", [
                _expect("Eco2LatencyBudgetFastBurn",
                        "location: answers slower than 1 s burn the 30-day latency budget 14.4x too fast",
service="location", severity="critical")])],
        ),
        # Healthy: fast, no errors — nothing fires.
        _case(
            {
                HTTP.format(service="my", status="200"): "0+60x400",
                BUCKET.format(service="my", le="1"): "0+60x400",
                COUNT.format(service="my"): "0+60x400",
            },
            [("6h", "Eco2AvailabilityBudgetSlowBurn", []), ("6h", "Eco2LatencyBudgetSlowBurn", [])],
        ),
        _case(
            {'eco2_jobs_overdue{service="scan"}': "0 0 3x20"},
            [("4m", "Eco2JobsStuckPastDeadline", []),
             ("10m", "Eco2JobsStuckPastDeadline", [
                 _expect("Eco2JobsStuckPastDeadline", "scan: 3 unfinished job(s) past their deadline",
service="scan", severity="critical")])],
        ),
        _case(
            {'eco2_job_sweep_last_success_timestamp_seconds{service="chat"}': "60x20"},
            [("5m", "Eco2JobSweeperStalled", []),
             ("15m", "Eco2JobSweeperStalled", [
                 _expect("Eco2JobSweeperStalled", "chat: no worker finished a sweep for 5 minutes",
service="chat", severity="critical")])],
        ),
        _case(
            {'eco2_events_consumed_total{consumer="my",outcome="dead_lettered"}': "0 0 0 2 2 2 2 2",
             'eco2_events_consumed_total{consumer="character",outcome="dead_lettered"}': "0x8"},
            [("6m", "Eco2DeadLettersGrowing", [
                _expect("Eco2DeadLettersGrowing", "my: 2 event(s) dead-lettered in 30 minutes",
consumer="my", severity="warning")])],
        ),
        _case(
            {'eco2_outbox_lag_seconds{producer="scan"}': "0 0 90x10", 'eco2_outbox_lag_seconds{producer="auth"}': "0x12",
             'up{namespace="events",job="relay"}': "1x12"},
            [("10m", "Eco2OutboxLag", [
                _expect("Eco2OutboxLag", "scan: the oldest unpublished event is 90 s old",
producer="scan", severity="critical")]),
             ("10m", "Eco2RelayDown", [])],
        ),
        # Nothing exported by the broker, the database or Redis: each "down" alert fires.
        _case(
            {'cnpg_collector_up{pod="pg-1"}': "0x10", 'redis_up{pod="redis-0"}': "1x10"},
            [("5m", "Eco2BrokerDown", [
                _expect("Eco2BrokerDown", "RabbitMQ exports nothing: the broker (or its metrics) is down",
severity="critical")]),
             ("5m", "Eco2DatabaseDown", [
                 _expect("Eco2DatabaseDown", "no PostgreSQL instance reports up",
severity="critical")]),
             ("5m", "Eco2RedisDown", [])],
        ),
        # scan's pool has all 20 connections out for 12 minutes; my's has 12 of 20 out: only scan fires.
        _case(
            {'eco2_db_pool_connections{service="scan",state="in_use"}': "20x12",
             'eco2_db_pool_size{service="scan"}': "20x12",
             'eco2_db_pool_connections{service="my",state="in_use"}': "12x12",
             'eco2_db_pool_size{service="my"}': "20x12"},
            [("5m", "Eco2DatabasePoolSaturated", []),
             ("11m", "Eco2DatabasePoolSaturated", [
                 _expect("Eco2DatabasePoolSaturated", "scan: a database pool has every connection checked out",
service="scan", severity="warning")])],
        ),
        _case(
            {'kubelet_certificate_manager_client_ttl_seconds{node="worker-1"}': "864000x5",
             'kubelet_certificate_manager_client_ttl_seconds{node="worker-2"}': "31536000x5"},
            [("2m", "Eco2CertificateExpiring", [
                _expect("Eco2CertificateExpiring", "worker-1: the kubelet's client certificate expires in 10d 0h 0m 0s",
node="worker-1", severity="warning")])],
        ),
    ]  # fmt: skip


def test_the_rule_file_is_generated_from_scripts_monitoring() -> None:
    assert (ROOT / "workloads/monitoring/base/prometheusrule.yaml").read_text() == rules.render(), (
        "run: uv run python scripts/monitoring/rules.py"
    )


def test_every_alert_has_a_runbook_section() -> None:
    doc = (ROOT / "docs/observability.md").read_text()
    anchors = {"-".join(line.lstrip("#").strip().lower().split()) for line in doc.splitlines() if line.startswith("#")}
    for group in rules.groups():
        for rule in group["rules"]:
            if "alert" in rule:
                anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
                assert anchor in anchors, f"{rule['alert']}: docs/observability.md has no section #{anchor}"


@needs_promtool
def test_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    spec = yaml.safe_load(rules.render())["spec"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    checked = subprocess.run([PROMTOOL, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases()}
    (tmp_path / "rules_test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False, allow_unicode=True))
    run = subprocess.run([PROMTOOL, "test", "rules", "rules_test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """The harness can fail: an alert expected where none fires makes promtool exit non-zero."""
    assert PROMTOOL is not None
    spec = yaml.safe_load(rules.render())["spec"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    wrong = _case({'eco2_jobs_overdue{service="scan"}': "0x20"},
                  [("10m", "Eco2JobsStuckPastDeadline", [_expect("Eco2JobsStuckPastDeadline", "x", service="scan")])])  # fmt: skip
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": [wrong]}))
    run = subprocess.run([PROMTOOL, "test", "rules", "t.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0
