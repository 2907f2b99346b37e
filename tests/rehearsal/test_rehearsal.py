"""The deploy rehearsal: the rendered prod overlay run as local processes, driven through its Ingress
routes by a user who logs in, scans a photo, gets a reward and sees it on their profile. Wrong
variable names, secret keys, hosts, roles or routes in the manifests make it fail."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import httpx
import pytest

from tests.auth.fake_providers import FakeProviders
from tests.deploy import chains
from tests.rehearsal import stack as rs
from tests.support.fake_openai import FakeOpenAI
from tests.support.images import PNG
from tests.support.servers import free_port, serve_asgi, stop_process

pytestmark = pytest.mark.rehearsal

FRONTEND = "https://eco2.example.com"


def _needs() -> None:
    missing = [tool for tool in ("kubectl", "redis-server", "rabbitmqctl", "psql") if not shutil.which(tool)]
    if missing or not rs.PG_BIN:
        pytest.fail(
            f"the rehearsal needs {missing or 'the PostgreSQL server binaries'} (scripts/ci/ensure_services.sh)"
        )


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    import subprocess

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rs._wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 10)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, moto_s3: str
) -> Iterator[tuple[rs.Rehearsal, dict[tuple[str, str], str], FakeProviders, FakeOpenAI]]:
    _needs()
    tmp = tmp_path_factory.mktemp("rehearsal")
    os.chmod(tmp, 0o755)
    rendered = rs.render_environment()
    store = rs.SecretStore()
    procs = chains.processes(rendered, rs.ENV, store)
    secret_data = chains.secrets(rendered, rs.ENV, store)
    services = chains.cluster_services(rendered, rs.ENV)
    providers, llm = FakeProviders(), FakeOpenAI()
    with ExitStack() as stack:
        pg_port = stack.enter_context(rs.private_postgres(tmp / "postgres"))
        rs.apply_data_crs(rendered, secret_data, pg_port)
        redis_port = stack.enter_context(rs.private_redis(secret_data[("redis", "redis-password")]["password"]))
        rabbit = secret_data[("rabbitmq", "rabbitmq-default-user")]
        vhost = stack.enter_context(rs.private_vhost(rabbit["username"], rabbit["password"]))
        providers_url = stack.enter_context(serve_asgi(providers.app()))
        llm_url = stack.enter_context(serve_asgi(llm.app()))
        ports = {p.name: free_port() for p in procs if p.args[0] == "serve"}
        local: dict[str, str] = {}
        for (host, port), endpoint in services.items():
            if endpoint.namespace == "postgres":
                local[f"{host}:{port}"] = f"127.0.0.1:{pg_port}"
            elif endpoint.namespace == "redis":
                local[f"{host}:{port}"] = f"127.0.0.1:{redis_port}"
            elif endpoint.namespace == "rabbitmq":
                local[f"{host}:{port}"] = "127.0.0.1:5672"
            else:
                (api,) = [
                    p
                    for p in procs
                    if p.kind == "Deployment"
                    and p.namespace == endpoint.namespace
                    and dict(endpoint.pod_labels).items() <= p.labels.items()
                ]
                local[f"{host}:{port}"] = f"127.0.0.1:{ports[api.name]}"
        boto3.client(
            "s3",
            endpoint_url=moto_s3,
            region_name="ap-northeast-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(
            Bucket=next(p.env["IMAGE_S3_BUCKET"] for p in procs if "IMAGE_S3_BUCKET" in p.env),
            CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"},
        )
        overrides = {
            # AWS: moto, through the SDK's own endpoint variables. No keys: the pods that use the bucket
            # get credentials only by trading their service-account token (AWS_ROLE_ARN, IRSA).
            "AWS_ENDPOINT_URL_S3": moto_s3,
            "AWS_ENDPOINT_URL_STS": moto_s3,
            # The providers' real endpoints are code defaults (not manifest values): point them at the stand-ins.
            **{
                f"AUTH_{p.upper()}_{k.upper()}_URL": f"{providers_url}/{p}/{path}"
                for p, k, path in (
                    ("kakao", "token", "token"),
                    ("kakao", "profile", "me"),
                    ("google", "token", "token"),
                    ("google", "profile", "userinfo"),
                    ("naver", "token", "token"),
                    ("naver", "profile", "me"),
                )
            },
        }
        rehearsal = rs.Rehearsal(
            rendered, tmp, local, vhost, rabbit["username"], overrides, {"api.openai.com": llm_url}
        )
        rehearsal.secret_data = secret_data
        for job in (p for p in procs if p.kind == "Job"):
            rehearsal.run_job(job)
        for process in (p for p in procs if p.kind == "Deployment"):
            rehearsal.start(process, ports.get(process.name))
        stack.callback(rehearsal.stop)
        rs.wait_all_ready(rehearsal.running)
        time.sleep(1.0)  # workers attach their queues
        for item in rehearsal.running:
            assert item.popen.poll() is None, f"{item.process.label} exited:\n{item.log.read_text()[-3000:]}"
        yield rehearsal, rs.ingress_routes(rendered, services, local), providers, llm


async def _flow(
    rehearsal: rs.Rehearsal, routes: dict[tuple[str, str], str], providers: FakeProviders
) -> dict[str, Any]:
    host = next(h for h, _ in routes)
    async with httpx.AsyncClient(
        base_url=f"https://{host}", transport=rs.IngressTransport(routes), timeout=20
    ) as client:
        start = await client.get("/api/v1/auth/kakao", params={"frontend_origin": FRONTEND})
        assert start.status_code == 200, start.text
        code = providers.issue_code("kakao", {"id": "4242", "nickname": "리허설", "email": "r@example.com"})
        callback = await client.get(
            "/api/v1/auth/kakao/callback", params={"code": code, "state": start.json()["data"]["state"]}
        )
        assert callback.status_code == 302, callback.text
        assert callback.headers["location"].startswith(FRONTEND), callback.headers["location"]
        issued = await client.post("/api/v1/images/scan", json={"filename": "photo.png", "content_type": "image/png"})
        assert issued.status_code == 200, issued.text
        upload = issued.json()
        async with httpx.AsyncClient() as plain:  # the browser PUTs straight to the bucket
            put = await plain.put(upload["upload_url"], content=PNG, headers={"Content-Type": "image/png"})
        assert put.status_code == 200, put.text
        submitted = await client.post("/api/v1/scan", json={"image_url": upload["cdn_url"]})
        assert submitted.status_code in (200, 202), submitted.text
        job = submitted.json()["job_id"]
        deadline = time.monotonic() + 60
        while True:
            result = await client.get(f"/api/v1/scan/{job}/result")
            if result.status_code == 200:
                break
            assert result.status_code == 202, result.text
            assert time.monotonic() < deadline, f"scan {job} never finished:\n{rehearsal.logs()}"
            await asyncio.sleep(0.3)
        body = result.json()
        while True:
            owned = await client.get("/api/v1/users/me/characters")
            assert owned.status_code == 200, owned.text
            if body["reward"]["name"] in [c["name"] for c in owned.json()]:
                break
            assert time.monotonic() < deadline, f"the reward never reached the profile:\n{rehearsal.logs()}"
            await asyncio.sleep(0.3)
        profile = await client.get("/api/v1/users/me")
        assert profile.status_code == 200, profile.text
        return {"result": body, "owned": owned.json(), "profile": profile.json()}


def test_login_scan_reward_profile_through_the_prod_overlay(cluster: Any) -> None:
    rehearsal, routes, providers, llm = cluster
    seen = asyncio.run(_flow(rehearsal, routes, providers))
    assert seen["result"]["reward"]["received"] is True, seen["result"]
    assert seen["result"]["reward"]["name"] in [c["name"] for c in seen["owned"]]
    assert seen["profile"]["nickname"] == "리허설"
    # The model was asked (SCAN_LLM_* reached the worker), with the key from the secret store.
    assert llm.calls("classification"), "the scan worker never called the model: it ran the offline classifier"
    assert all(call["auth"] == f"Bearer {chains.store_value('/eco2/prod/scan/llm-api-key')}" for call in llm.requests)
    for item in rehearsal.running:
        assert item.popen.poll() is None, f"{item.process.label} died:\n{item.log.read_text()[-2000:]}"


def test_ingress_routes_only_public_prefixes(cluster: Any) -> None:
    _, routes, _, _ = cluster

    async def probe() -> int:
        host = next(h for h, _ in routes)
        async with httpx.AsyncClient(base_url=f"https://{host}", transport=rs.IngressTransport(routes)) as client:
            return (await client.post("/internal/v1/character/rewards", json={})).status_code

    assert asyncio.run(probe()) == 404


def test_every_worker_serves_what_its_pod_monitor_scrapes(cluster: Any) -> None:
    """Each worker Deployment has a PodMonitor on its ``metrics`` port, and the process behind it
    answers ``/metrics`` there with the kernel's metrics (the APIs are scraped on their HTTP port)."""
    rehearsal, *_ = cluster
    workers = [item for item in rehearsal.running if item.port is None]
    assert workers
    for item in workers:
        folder = f"workloads/domains/{item.process.folder}/prod"
        monitors = [o for o in rehearsal.rendered[folder] if o["kind"] == "PodMonitor"]
        assert len(monitors) == 1, f"{item.process.label}: {len(monitors)} PodMonitor(s)"
        (endpoint,) = monitors[0]["spec"]["podMetricsEndpoints"]
        (deployment,) = [o for o in rehearsal.rendered[folder] if o["kind"] == "Deployment"]
        ports = {p["name"]: p for p in deployment["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
        assert endpoint["port"] in ports, f"{item.process.label}: the PodMonitor's port is not the container's"
        assert monitors[0]["spec"]["selector"]["matchLabels"].items() <= item.process.labels.items()
        scraped = httpx.get(f"http://127.0.0.1:{rehearsal.metrics_ports[item.process.name]}{endpoint['path']}")
        assert scraped.status_code == 200, item.process.label
        assert "# TYPE eco2_outbox_lag_seconds gauge" in scraped.text, item.process.label
