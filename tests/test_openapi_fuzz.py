"""The OpenAPI documents are true (issue 12.10): schemathesis with every check over every service.

The services are those of ``services/registry.py``, so a service added later is fuzzed without
touching this file. All of them run behind the dev gateway on a real port (uvicorn, full start-up),
against the test mode's stores (SQLite/in-process, or PostgreSQL/Redis/RabbitMQ). The run is bounded
(examples per operation, request timeout) and reproducible (fixed seed, deterministic generation);
any failed check fails the test with schemathesis' own report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.config import CommonSettings
from services.gateway import create_gateway
from services.registry import SERVICES
from tests.support.servers import free_port, serve_asgi
from tests.support.tokens import auth_headers

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20260120
MAX_EXAMPLES = int(os.environ.get("ECO2_FUZZ_EXAMPLES", "12"))
RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def fuzz_common(migrated: CommonSettings) -> CommonSettings:
    # The public base is the gateway itself: services calling each other (scan → image) reach it,
    # and image URLs on it are ours.
    return migrated.model_copy(update={"public_api_base_url": f"http://127.0.0.1:{free_port()}"})


@pytest.fixture(scope="module")
def gateway_url(fuzz_common: CommonSettings) -> Iterator[str]:
    port = int(fuzz_common.public_api_base_url.rsplit(":", 1)[1])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTH_DEV_LOGIN_ENABLED", "true")  # fuzz the dev login pages too (settings read at build)
        gateway = create_gateway(list(SERVICES.values()), fuzz_common, run_workers=False)
    with serve_asgi(gateway, port, lifespan=True) as url:
        yield url


def schemathesis_bin() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a dev dependency (make sync)"
    return found


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_operation_behaves_as_documented(
    name: str, gateway_url: str, fuzz_common: CommonSettings, tmp_path: Path
) -> None:
    entry = SERVICES[name]
    token = auth_headers(fuzz_common)["Authorization"]
    command = [
        schemathesis_bin(),
        "--config-file",
        str(CONFIG),
        "run",
        f"{gateway_url}{entry.prefix}/openapi.json",
        "--url",
        gateway_url,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--header",
        f"Authorization: {token}",
        "--no-color",
    ]
    # In a scratch directory: schemathesis keeps a crash cache in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, cwd=tmp_path)
    report = result.stdout[-20000:] + result.stderr[-4000:]
    assert result.returncode == 0, f"schemathesis found {name}'s OpenAPI untrue:\n{report}"
