"""Who the client is, for the per-address rate limits: uvicorn believes ``X-Forwarded-For`` only from
the peers in ``FORWARDED_ALLOW_IPS`` (the load balancer's and nodes' networks in the cluster), so a
client on the internet cannot pick a fresh identity per request by writing the header itself.

Real sockets and uvicorn's own proxy-header handling (what ``eco2 serve`` and ``eco2 dev`` run);
the peer of every request here is 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common import serving
from services.common.config import CommonSettings
from tests.support.servers import REPO, dev_environment, free_port, serve_asgi, stop_process, wait_until

START = "/api/v1/auth/dev/start"  # a login start: throttled per client address
CLUSTER_NETWORKS = "10.20.0.0/16,192.168.0.0/16"  # the dev VPC and the pod network (not this peer)


@pytest.fixture
def common(migrated: CommonSettings) -> CommonSettings:
    """Counters of this test only: in real mode they live in Redis, shared by the whole run."""
    return migrated.model_copy(update={"redis_key_prefix": f"{migrated.redis_key_prefix}{uuid.uuid4().hex[:8]}:"})


def _statuses(base: str, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=base, timeout=30) as client:
        return [client.get(START, headers={"X-Forwarded-For": value}).status_code for value in forwarded_for]


def test_a_spoofed_header_from_an_untrusted_peer_does_not_change_the_identity(
    common: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> None:
    untrusting = common.model_copy(update={"forwarded_allow_ips": CLUSTER_NETWORKS.split(",")})
    app = create_app(common=untrusting, settings=auth_settings_factory(login_per_address=3, login_global=1000))
    with serve_asgi(app, lifespan=True, **serving.proxy_options(untrusting)) as base:
        # A new "address" in every request: all of them count against the peer's own address.
        statuses = _statuses(base, [f"198.51.100.{i}" for i in range(1, 6)])
    assert 429 not in statuses[:3]
    assert statuses[3:] == [429, 429]


def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(
    common: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> None:
    """The load balancer appends the address it saw; whatever the client wrote stays to its left and
    is ignored. Two clients behind the same proxy keep separate budgets."""
    behind_proxy = common.model_copy(update={"forwarded_allow_ips": ["127.0.0.1"]})
    app = create_app(common=behind_proxy, settings=auth_settings_factory(login_per_address=3, login_global=1000))
    with serve_asgi(app, lifespan=True, **serving.proxy_options(behind_proxy)) as base:
        spoofing = _statuses(base, [f"198.51.100.{i}, 203.0.113.7" for i in range(1, 6)])
        other_client = _statuses(base, ["203.0.113.8"])
    assert 429 not in spoofing[:3]
    assert spoofing[3:] == [429, 429]
    assert other_client != [429]


def test_eco2_serve_reads_the_trusted_networks_from_the_settings(tmp_path: Path) -> None:
    """``eco2 serve auth`` as a container runs it, with the workloads' kind of setting: a client
    rotating X-Forwarded-For from outside those networks is still one client."""
    port = free_port()
    env = dev_environment(tmp_path) | {
        "ENVIRONMENT": "development",
        "AUTH_DEV_LOGIN_ENABLED": "true",
        "AUTH_LOGIN_PER_ADDRESS": "3",
        "FORWARDED_ALLOW_IPS": CLUSTER_NETWORKS,
    }
    cli = [sys.executable, "-m", "services.cli"]
    subprocess.run([*cli, "migrate", "auth"], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli, "serve", "auth", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: process.poll() is None and httpx.get(f"{base}/health").status_code == 200, "eco2 serve")
            statuses = _statuses(base, [f"198.51.100.{i}" for i in range(1, 6)])
        finally:
            stop_process(process, 30)
    assert 429 not in statuses[:3], log.read_text()[-2000:]
    assert statuses[3:] == [429, 429]


def test_production_refuses_trusting_every_peer() -> None:
    with pytest.raises(ValueError, match="FORWARDED_ALLOW_IPS"):
        CommonSettings(environment="production", internal_token="a-real-token-0123456789", forwarded_allow_ips="*")
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        CommonSettings(forwarded_allow_ips="10.0.0.0/8,alb.internal")
    parsed = CommonSettings(forwarded_allow_ips=" 10.20.0.0/16 , 192.168.0.0/16 ")
    assert parsed.forwarded_allow_ips == ["10.20.0.0/16", "192.168.0.0/16"]
