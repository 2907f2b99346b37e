"""The one image (Dockerfile, .dockerignore) and the laptop stack (compose.yaml), checked without a
Docker engine: hadolint, and the rules read from the files themselves."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy import manifests
from tests.deploy.manifests import ROOT

pytestmark = pytest.mark.infra

DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()
INFRA = {"postgres", "redis", "rabbitmq", "minio"}
ONE_SHOT = {"migrate", "minio-setup"}


def stages() -> list[list[str]]:
    """Dockerfile instructions (continuation lines joined, comments dropped) grouped by FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    found: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_dependencies_in_their_own_layer() -> None:
    build, runtime = stages()
    assert "AS build" in build[0]
    assert "AS runtime" in runtime[0]
    copies = [i for i, line in enumerate(build) if line.startswith("COPY")]
    syncs = [i for i, line in enumerate(build) if "uv sync" in line]
    assert "pyproject.toml uv.lock" in build[copies[0]], "the lock is copied alone first"
    assert "--no-install-project" in build[syncs[0]]
    assert syncs[0] < copies[1], "dependencies before the sources"
    assert all("--frozen" in build[i] and "--no-dev" in build[i] for i in syncs)


def test_runtime_stage_is_slim_non_root_and_runs_eco2() -> None:
    runtime = stages()[-1]
    body = "\n".join(runtime)
    assert re.search(r"^USER 10001(:10001)?$", body, re.M), "non-root numeric user"
    for tool in ("apt-get", "gcc", "build-essential", "pip install", "uv ", "curl", "wget", "git "):
        assert tool not in body, f"the final stage must not install or carry {tool!r}"
    assert re.search(r"^COPY --from=build /opt/venv /opt/venv$", body, re.M)
    assert 'ENTRYPOINT ["eco2"]' in body
    assert not any(line.upper().startswith("HEALTHCHECK") for stage in stages() for line in stage)
    for line in runtime:
        if line.startswith(("ENV", "ARG")):
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|API_KEY)", line), f"no secrets in the image: {line}"


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]

    def excluded(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or path.startswith(pat + "/"):
                verdict = not negate
        return verdict

    for path in (
        "tests/conftest.py",
        ".venv/bin/python",
        "var/dev/auth.db",
        ".git/HEAD",
        ".env",
        "docs/workloads.md",
        "workloads/domains/auth/base/deployment.yaml",
        "services/__pycache__/cli.cpython-311.pyc",
    ):
        assert excluded(path), f"{path} would be sent to the build"
    for path in ("pyproject.toml", "uv.lock", "README.md", "services/cli.py", "services/auth/app.py"):
        assert not excluded(path), f"{path} is needed by the build"


# --- compose.yaml ------------------------------------------------------------------------------------


def app_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("build")}


def test_every_service_and_worker_runs_from_the_one_image() -> None:
    apps = app_services()
    assert {svc["image"] for svc in apps.values()} == {"${ECO2_IMAGE:-eco2:local}"}
    commands = {name: svc["command"] for name, svc in apps.items()}
    assert commands.pop("migrate") == ["migrate"]
    assert commands == {folder: list(args) for folder, args in manifests.deployed_folders().items()}


def test_healthchecks_and_ordered_startup() -> None:
    for name, svc in COMPOSE["services"].items():
        if name in ONE_SHOT:
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
    for name, svc in COMPOSE["services"].items():
        for dependency, condition in svc.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"
    for name, svc in app_services().items():
        if name != "migrate":
            assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert COMPOSE["services"]["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_required_variables_fail_fast_and_env_example_covers_every_variable() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_TEXT))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_TEXT))
    assert {
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "RABBITMQ_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "INTERNAL_TOKEN",
        "AUTH_SECRET_KEY",
    } <= required
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= example, f".env.example lacks {used - example}"
    assert example <= used, f".env.example names variables compose does not use: {example - used}"
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.split("=", 1)[0] in required:
            assert line.endswith("="), f"{line}: required secrets have no example value"
