"""Fixtures for the infrastructure checks (Terraform, Ansible, deployment scripts).

They need no cloud and no internet: Terraform gets the AWS provider from a local
filesystem mirror (discovered at run time, never a committed path) and talks to
moto's server on loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import stop_process

from .helpers import AWS_PROVIDER, MIRROR_CANDIDATES, _free_port, find_provider_mirror


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # CI runs the suite twice (embedded, real); infra checks do not depend on
    # the adapter mode, so they run once, in the default embedded run.
    if os.environ.get("ECO2_TEST_MODE") == "real":
        skip = pytest.mark.skip(reason="infra checks run only in the embedded (default) test run")
        here = Path(__file__).resolve().parent
        for item in items:
            if here in Path(str(item.fspath)).resolve().parents:
                item.add_marker(skip)


# ---------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    found = shutil.which("terraform")
    if not found:
        if os.environ.get("ECO2_SKIP_TERRAFORM_TESTS") == "1":
            pytest.skip("terraform not installed and ECO2_SKIP_TERRAFORM_TESTS=1")
        pytest.fail(
            "terraform is not on PATH. The infra tests need Terraform >= 1.6 "
            "(set ECO2_SKIP_TERRAFORM_TESTS=1 to skip them knowingly on a machine without it)."
        )
    return found


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory, terraform_bin: str) -> dict[str, str]:
    """Environment for every terraform call: a CLI config written for this run.

    With a local mirror, the AWS provider comes only from it (the registry is
    not reachable here); every run shares one plugin cache, so each root's
    init links the provider instead of unpacking it again.
    """
    cfg_dir = tmp_path_factory.mktemp("terraform-cli")
    cache = cfg_dir / "plugin-cache"
    cache.mkdir()
    mirror = find_provider_mirror()
    if mirror is not None:
        root, version = mirror
        installation = (
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{root}"\n    include = ["{AWS_PROVIDER}"]\n  }}\n'
            f'  direct {{\n    exclude = ["{AWS_PROVIDER}"]\n  }}\n'
            "}\n"
        )
        sys.stderr.write(f"\n[infra] AWS provider {version} from filesystem mirror {root}\n")
    else:
        installation = ""
        sys.stderr.write(
            "\n[infra] WARNING: no local AWS provider mirror found "
            f"(looked in ECO2_TF_PLUGIN_MIRROR and {', '.join(MIRROR_CANDIDATES)}); "
            "falling back to the public Terraform registry\n"
        )
    cli_config = cfg_dir / "terraform.tfrc"
    cli_config.write_text(f'plugin_cache_dir = "{cache}"\n{installation}')
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(var, None)
    return env


# ---------------------------------------------------------------------------
# moto
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {
        **os.environ,
        # AWS managed policies (EBS CSI, SSM core, ECR read-only) are attached
        # by ARN; moto only knows them when asked to load them.
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        # ACM certificates move to ISSUED at once, so aws_acm_certificate_validation returns.
        "MOTO_ACM_VALIDATION_WAIT": "0",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start on {url}:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        stop_process(proc, 15)
