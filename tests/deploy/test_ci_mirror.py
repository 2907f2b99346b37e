"""GitHub Actions run what ``.ci/run`` runs: its steps are named (``.ci/run --list``) and the CI
workflow's jobs call ``.ci/run STEP...`` for subsets of them. These checks hold the two together:
every step runs in some job, in an order that works (install first, the data services before the
suites that need them, the browser before the suites that drive it), in a system its scripts can
install into, and no job runs a check of its own that ``.ci/run`` does not."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT

pytestmark = pytest.mark.infra

CI_RUN = ROOT / ".ci/run"
WORKFLOWS = ROOT / ".github/workflows"
# Steps that need another step earlier in the same job (same machine or container).
NEEDS = {
    "real": {"services", "browser"},
    "embedded": {"browser"},
    "rehearsal": {"services"},
    "drill": set(),
}
DEBIAN_SCRIPTS = {"services", "browser", "drill"}  # apt-get of Debian's packages (scripts/ci/ensure_*.sh)


def ci_steps() -> list[str]:
    out = subprocess.run(["bash", str(CI_RUN), "--list"], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.split()


def workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def ci_run_calls(job: dict[str, Any]) -> list[list[str]]:
    calls = []
    for command in runs(job):
        for line in command.splitlines():
            words = shlex.split(line)
            if words and words[0] in {".ci/run", "./.ci/run"}:
                calls.append(words[1:])
    return calls


def test_ci_run_steps_are_its_whole_body() -> None:
    """Every command of .ci/run lives in a step function, and every step function is listed, so
    ``.ci/run`` with no arguments and the union of the jobs' steps run the same commands."""
    text = CI_RUN.read_text()
    steps = ci_steps()
    assert steps[0] == "install"
    defined = re.findall(r"^step_(\w+)\(\)", text, re.M)
    assert sorted(defined) == sorted(steps), "a step_* function that is not in STEPS, or the reverse"
    body = re.sub(r"^(step_\w+|run_mode)\(\) \{.*?^\}$|^step_\w+\(\) \{.*\}$", "", text, flags=re.M | re.S)
    strays = [
        line
        for line in body.splitlines()
        if re.search(r"\b(make|pytest|ruff|mypy|eco2|bash scripts/|\.venv/bin/|uv run)\b", line.split("#")[0])
    ]
    assert not strays, f"commands outside a step (no job would run them): {strays}"


def test_ci_workflow_jobs_run_every_step_of_ci_run() -> None:
    steps = ci_steps()
    jobs = workflow("ci.yml")["jobs"]
    covered: dict[str, str] = {}
    for name, job in jobs.items():
        calls = ci_run_calls(job)
        assert calls, f"{name}: a job that is not .ci/run steps"
        for call in calls:
            assert call, f"{name}: `.ci/run` alone runs everything; name the job's steps"
            unknown = set(call) - set(steps)
            assert not unknown, f"{name}: .ci/run has no step {unknown}"
            assert call[0] == "install", f"{name}: starts with {call[0]}, before the environment exists"
            for i, step in enumerate(call):
                missing = NEEDS.get(step, set()) - set(call[:i])
                assert not missing, f"{name}: {step} runs before {missing} in the same job"
                covered.setdefault(step, name)
            assert [s for s in steps if s in call] == call, f"{name}: steps out of .ci/run's order"
    assert set(covered) == set(steps), f"steps of .ci/run no CI job runs: {set(steps) - set(covered)}"


def test_ci_jobs_run_nothing_beside_ci_run() -> None:
    """A check run only in the workflow (or only in .ci/run) is how the two drift: a job's commands
    are .ci/run's steps, and what prepares the bare container for them."""
    for name, job in workflow("ci.yml")["jobs"].items():
        for command in runs(job):
            words = shlex.split(command)
            if words[:1] in ([".ci/run"], ["./.ci/run"]):
                continue
            parts = [shlex.split(part) for part in command.split("&&")]
            assert all(part[:1] == ["apt-get"] for part in parts), f"{name}: runs `{command}`"


def test_ci_jobs_run_where_the_scripts_install() -> None:
    """The ensure_* scripts install Debian's packages (as .ci/run does on a CI machine); the infra
    step needs Terraform (HashiCorp's pinned action) and kubectl (on GitHub's Ubuntu runner)."""
    for name, job in workflow("ci.yml")["jobs"].items():
        steps = {s for call in ci_run_calls(job) for s in call}
        uses = " ".join(step.get("uses", "") for step in job["steps"])
        if steps & DEBIAN_SCRIPTS:
            assert str(job.get("container", "")).startswith("debian:"), f"{name}: apt-get needs Debian"
        if "infra" in steps:
            assert "hashicorp/setup-terraform@" in uses, f"{name}: infra tests need terraform"
            assert "container" not in job, f"{name}: kubectl comes with the Ubuntu runner"
        assert "actions/checkout@" in uses
        assert "astral-sh/setup-uv@" in uses, f"{name}: make sync needs uv"


def test_ci_runs_on_pull_requests_and_gates_the_image() -> None:
    assert "pull_request" in workflow("ci.yml")["on"]
    assert "workflow_call" in workflow("ci.yml")["on"]
    jobs = workflow("image.yml")["jobs"]
    # `$/` is this repository's own workflow (zizmor's self-repository audit prefers it to `./`).
    gate = [
        name
        for name, job in jobs.items()
        if job.get("uses") in {"$/.github/workflows/ci.yml", "./.github/workflows/ci.yml"}
    ]
    assert gate, "the image workflow must run the quality gate"
    assert gate[0] in ([jobs["build"]["needs"]] if isinstance(jobs["build"]["needs"], str) else jobs["build"]["needs"])


def test_infra_workflow_runs_the_infra_step() -> None:
    """Pushes that change only infrastructure skip the image workflow; this one runs the same step."""
    jobs = workflow("infra.yml")["jobs"]
    calls = [call for job in jobs.values() for call in ci_run_calls(job)]
    assert calls == [["install", "infra"]]
    for job in jobs.values():
        assert "hashicorp/setup-terraform@" in " ".join(s.get("uses", "") for s in job["steps"])


def test_ci_run_refuses_an_unknown_step(tmp_path: Path) -> None:
    out = subprocess.run(["bash", str(CI_RUN), "no-such-step"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "unknown step" in out.stderr
