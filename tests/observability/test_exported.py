"""Dashboards and alerts over metrics that exist: ``eco2 dev`` (every service and worker in one
process, as a developer starts it) runs a smoke scenario — an upload, a scan through the worker and a
model, its SSE stream, a chat message answered by the assistant and streamed to ``done``, a location
search, the news feed, the reward event through relay and consumers — and then its ``/metrics`` must
export every ``eco2_*`` metric a dashboard panel or an alert names. The scenario's own families must
carry samples, and each job pipeline dashboard's series must exist for its service (a chat panel
over ``service="chat"`` shows chat's own samples, not only the scan's)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.config import CommonSettings
from tests.observability import promql
from tests.support.fake_openai import FakeOpenAI
from tests.support.images import upload_image
from tests.support.servers import dev_environment, eco2_dev, free_port, serve_asgi
from tests.support.sse import parse_sse
from tests.support.tokens import auth_headers

pytestmark = pytest.mark.slow

# Families the scenario exercises: each must have a sample, not only its HELP/TYPE lines.
EXERCISED = {
    "eco2_http_requests_total",
    "eco2_http_request_duration_seconds",
    "eco2_jobs_submitted_total",
    "eco2_jobs_finished_total",
    "eco2_job_duration_seconds",
    "eco2_job_stage_duration_seconds",
    "eco2_job_deliveries_total",
    "eco2_job_queue_depth",
    "eco2_job_sweep_last_success_timestamp_seconds",
    "eco2_jobs_overdue",
    "eco2_model_request_duration_seconds",
    "eco2_outbox_lag_seconds",
    "eco2_outbox_published_total",
    "eco2_events_consumed_total",
    "eco2_event_consume_lag_seconds",
    "eco2_sse_streams_open",
    "eco2_sse_frames_sent_total",
    "eco2_location_query_duration_seconds",
    "eco2_db_pool_connections",
}


@pytest.fixture(scope="module")
def fake_llm_url() -> Iterator[str]:
    with serve_asgi(FakeOpenAI().app()) as url:
        yield f"{url}/v1"


def pipeline_families(service: str) -> set[str]:
    """The metrics the service's pipeline dashboard reads with ``service="<service>"``."""
    board = json.loads((promql.DASHBOARDS / f"{service}-pipeline.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return {promql.base_name(n) for e in exprs if f'service="{service}"' in e for n in promql.names(e)}


def sampled_for(text: str, service: str) -> set[str]:
    """Families with a sample labelled ``service="<service>"`` (histogram suffixes folded)."""
    label = re.compile(rf'[{{,]service="{re.escape(service)}"[,}}]')
    return {promql.base_name(line.split("{", 1)[0]) for line in text.splitlines()
            if line and not line.startswith("#") and label.search(line)}  # fmt: skip


def scrape(text: str) -> tuple[set[str], set[str]]:
    """(families declared by ``# TYPE``, families with at least one sample), histogram suffixes folded."""
    declared, sampled = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            sampled.add(promql.base_name(name.removesuffix("_total")))
            sampled.add(promql.base_name(name))
    return declared | {f"{n}_total" for n in declared}, sampled | {f"{n}_total" for n in sampled}


async def smoke(base: str, common: CommonSettings) -> None:
    headers = auth_headers(common, uuid.uuid4())
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        image = await upload_image(client, common, headers)
        submitted = await client.post(
            "/api/v1/scan", json={"image_url": image["cdn_url"], "user_input": "라벨 뗀 생수병"}, headers=headers
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        for _ in range(400):
            result = await client.get(f"/api/v1/scan/{job_id}/result", headers=headers)
            if result.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert result.json()["status"] == "completed", result.text
        stream = await client.get(f"/api/v1/scan/{job_id}/events", headers=headers)
        assert parse_sse(stream.text)[-1]["event"] == "done"
        await chat_message(client, headers)
        near = await client.get("/api/v1/locations/centers", params={"lat": 37.5665, "lon": 126.978}, headers=headers)
        assert near.status_code == 200, near.text
        assert (await client.get("/api/v1/info/news", headers=headers)).status_code == 200


async def chat_message(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """A chat created, a question sent, its stream followed to ``done`` (the assistant's stages ran)."""
    created = await client.post("/api/v1/chat", headers=headers)
    assert created.status_code == 201, created.text
    sent = await client.post(
        f"/api/v1/chat/{created.json()['id']}/messages", json={"message": "페트병 어떻게 버려요?"}, headers=headers
    )
    assert sent.status_code == 202, sent.text
    stream = await client.get(f"/api/v1/chat/{sent.json()['job_id']}/events", headers=headers)
    done = parse_sse(stream.text)[-1]
    assert done["event"] == "done", stream.text
    assert done["data"]["status"] == "completed", done


def test_every_metric_named_by_a_dashboard_or_alert_is_exported(tmp_path: Path, fake_llm_url: str) -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    common = CommonSettings(ECO2_DATA_DIR=tmp_path, public_api_base_url=base, environment="development")
    with eco2_dev(port, dev_environment(tmp_path), "--model-url", fake_llm_url, log=tmp_path / "dev.log"):
        asyncio.run(smoke(f"http://127.0.0.1:{port}", common))
        # The sweep (queue depth, overdue) and the reward event's relay pass come shortly after.
        pipelines = {service: pipeline_families(service) for service in ("scan", "chat")}
        for _ in range(100):
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            declared, sampled = scrape(text)
            by_service = {service: sampled_for(text, service) for service in pipelines}
            if sampled >= EXERCISED and all(by_service[s] >= families for s, families in pipelines.items()):
                break
            time.sleep(0.1)
    missing_samples = EXERCISED - sampled
    assert not missing_samples, f"the smoke scenario left these without a sample: {sorted(missing_samples)}"
    assert pipelines["chat"] >= {"eco2_job_stage_duration_seconds", "eco2_jobs_finished_total"}
    for service, families in pipelines.items():
        empty = families - by_service[service]
        assert not empty, f"the {service} pipeline dashboard reads series without a {service} sample: {sorted(empty)}"
    ours = {name for name in promql.referenced() if name.startswith("eco2_")}
    missing = {name for name in ours if promql.base_name(name) not in declared and name not in declared}
    where = {name: sorted(promql.referenced()[name]) for name in missing}
    assert not missing, f"dashboards/alerts name metrics the process does not export: {where}"
