"""Metric names in the PromQL of dashboards and alert rules (what a scrape must provide)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "workloads/monitoring/base/dashboards"
RULES = ROOT / "workloads/monitoring/base/prometheusrule.yaml"
KEYWORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "inf", "nan"}  # fmt: skip
# Exporters the cluster runs: RabbitMQ's plugin, CloudNativePG, the Redis exporter, node-exporter,
# kube-state-metrics, the kubelet and API server (kube-prometheus-stack), and Prometheus' own ``up``.
EXTERNAL = ("rabbitmq_", "cnpg_", "redis_", "node_", "kube_", "kubelet_", "apiserver_")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals (label values, regexes)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        token = match.group(0)
        after = expr[match.end() :].lstrip()
        if token.lower() in KEYWORDS or after.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]", token):
            continue
        found.add(token)
    return found


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in board["templating"]["list"]:
            query = variable.get("query")
            if isinstance(query, dict) and "label_values(" in query["query"]:
                metric = query["query"].split("label_values(", 1)[1].split(",", 1)[0].strip()
                yield f"{path.name}: ${variable['name']}", metric


def rule_exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["spec"]["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def recorded() -> set[str]:
    return {
        rule["record"]
        for group in yaml.safe_load(RULES.read_text())["spec"]["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def referenced() -> dict[str, set[str]]:
    """metric name -> where it is used (dashboard panel, alert or recording rule)."""
    uses: dict[str, set[str]] = {}
    for where, expr in [*dashboard_exprs(), *rule_exprs()]:
        for name in names(expr):
            uses.setdefault(name, set()).add(where)
    return uses


def base_name(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def load_generator(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "scripts/monitoring"))
    return __import__(name)
