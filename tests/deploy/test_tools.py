"""checkov over everything deployed, actionlint and zizmor over the workflows, and the workflow
rules (actions pinned by commit SHA, permissions, timeouts, concurrency)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import manifests
from tests.deploy.manifests import ROOT

pytestmark = pytest.mark.infra

CHECKOV = "checkov==3.3.30"  # run in its own tool environment: its pins clash with the project's
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed in the project environment (uv sync)"
    return str(path)


def test_checkov_passes_on_rendered_manifests_and_dockerfile(rendered: dict[str, Any], tmp_path: Path) -> None:
    # `uv run` exports the path of the uv running it (it need not be on PATH, see the Makefile).
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to run checkov in its own tool environment"
    for path in manifests.deployed_paths():
        if path.startswith("clusters/"):
            continue  # Argo CD Applications: checked by test_invariants
        docs = rendered[path]
        if isinstance(docs, Exception):
            raise docs
        (tmp_path / (path.replace("/", "__") + ".yaml")).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    result = subprocess.run(
        [
            uv,
            "tool",
            "run",
            "--from",
            CHECKOV,
            "checkov",
            "--config-file",
            str(ROOT / ".checkov.yaml"),
            "-d",
            str(tmp_path),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"kubernetes", "dockerfile"}
    failed = [
        f"{r['check_type']}: {f['check_id']} {f['check_name']} — {f['resource']} ({f['file_path']})"
        for r in reports
        for f in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    for r in reports:
        assert r["summary"]["parsing_errors"] == 0
        for skipped in r["results"]["skipped_checks"]:
            reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
            assert reason not in {"", "No comment provided"}, f"{skipped['check_id']} skipped without a reason"


def test_actionlint_passes() -> None:
    shellcheck = BIN / "shellcheck"
    args = [tool("actionlint"), "-no-color"] + (["-shellcheck", str(shellcheck)] if shellcheck.exists() else [])
    result = subprocess.run([*args, *map(str, WORKFLOWS)], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_passes_offline() -> None:
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", str(ROOT / ".github/workflows")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_rules(workflow: Path) -> None:
    text = workflow.read_text()
    doc = yaml.safe_load(text)
    assert doc["permissions"] == {"contents": "read"}, "least privilege at the top; jobs widen only what they need"
    assert "concurrency" in doc
    for name, job in doc["jobs"].items():
        if "uses" in job:
            continue  # a called workflow sets its own
        assert 0 < job["timeout-minutes"] <= 60, f"{name}: no timeout"
    for line in re.findall(r"uses:\s*(\S+.*)", text):
        target = line.split()[0]
        if target.startswith(("./", "$/")):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", target), f"{target}: pin actions by commit SHA"
        assert re.search(r"#\s*v\d", line), f"{target}: say which release the SHA is"
