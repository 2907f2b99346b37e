"""The dashboards: generated from scripts/monitoring/dashboards.py, valid Grafana JSON with unique
panel ids, every panel and query on the ``datasource`` variable, every metric either ours
(``eco2_*``, checked against a live scrape in test_exported.py), recorded by our rules, or from a
known exporter."""

from __future__ import annotations

import json
import re

import pytest

from tests.observability import promql

BOARDS = sorted(promql.DASHBOARDS.glob("*.json"))


def test_the_json_is_what_the_generator_writes() -> None:
    generator = promql.load_generator("dashboards")
    written = {path.name: path.read_text() for path in BOARDS}
    assert written == generator.render(), "run: uv run python scripts/monitoring/dashboards.py"


def test_the_overlay_provisions_every_dashboard() -> None:
    kustomization = (promql.ROOT / "workloads/monitoring/base/kustomization.yaml").read_text()
    for path in BOARDS:
        assert f"dashboards/{path.name}" in kustomization


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_dashboard_shape(path) -> None:  # type: ignore[no-untyped-def]
    board = json.loads(path.read_text())
    assert board["uid"].startswith("eco2-")
    assert len(board["uid"]) <= 40  # Grafana's limit
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            for used in {v.strip("{}") for v in re.findall(r"\$\{?(\w+)\}?", target["expr"])}:
                assert used in variables or used.startswith("__"), f"{panel['title']}: ${used} is not a variable"
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(path.read_text())["uid"] for path in BOARDS]
    assert len(uids) == len(set(uids))


def test_every_metric_is_ours_recorded_or_from_a_known_exporter() -> None:
    recorded = promql.recorded()
    for name, where in promql.referenced().items():
        if name.startswith("eco2_") or name in recorded or name == "up":
            continue
        assert name.startswith(promql.EXTERNAL), f"{name} (in {sorted(where)}) is from no known exporter"
    for name, where in promql.referenced().items():
        if ":" in name:
            assert name in recorded, f"{name} (in {sorted(where)}) is recorded by no rule"


def test_the_name_extraction_reads_promql() -> None:
    expr = 'histogram_quantile(0.95, sum by (service, le) (rate(eco2_x_bucket{route!~".*/events",a="b"}[5m]))) / on (service) eco2:y:rate5m > 1'
    assert promql.names(expr) == {"eco2_x_bucket", "eco2:y:rate5m"}
