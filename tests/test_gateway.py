"""The dev gateway: every registered service behind one origin, prefixes dispatched, workers running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from html import escape
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from services.cli import app as cli
from services.common.config import CommonSettings
from services.gateway import create_gateway
from services.registry import SERVICES
from tests.auth.flows import dev_login
from tests.support.clients import BASE_URL
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import dev_environment, eco2_dev, free_port, serve_asgi

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def gateway(migrated: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    # Services read their own settings from the environment, as under `eco2 dev`.
    monkeypatch.setenv("AUTH_DEV_LOGIN_ENABLED", "true")
    common = migrated.model_copy(update={"cors_allowed_origins": ["https://app.eco2.test"]})
    app = create_gateway(list(SERVICES.values()), common)
    async with LifespanManager(app, startup_timeout=60) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


async def test_gateway_serves_every_service_prefix(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get("/health")).json()["service"] == "gateway"
    ready = await gateway.get("/ready")
    assert ready.status_code == 200
    assert all(f"{name}.kv" in ready.json()["checks"] for name in SERVICES)
    for entry in SERVICES.values():
        docs = await gateway.get(f"{entry.prefix}/openapi.json")
        assert docs.status_code == 200, entry.name
    page = await gateway.get("/")
    assert "dev login" in page.text


async def test_gateway_unknown_path_is_json_404_with_cors(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/scan/classify-nope", headers={"Origin": "https://app.eco2.test"})
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    elsewhere = await gateway.get("/api/v2/whatever", headers={"Origin": "https://app.eco2.test"})
    assert elsewhere.status_code == 404
    assert elsewhere.headers["access-control-allow-origin"] == "https://app.eco2.test"


async def test_dev_login_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    response = await dev_login(gateway, "gateway-user", "게이트웨이")
    assert response.status_code == 302
    assert response.headers["location"].endswith("/#/home")
    refreshed = await gateway.post("/api/v1/auth/refresh")
    assert refreshed.status_code == 200
    out = await gateway.post("/api/v1/auth/logout")
    assert out.status_code == 200
    assert (await gateway.post("/api/v1/auth/refresh")).status_code == 401


def test_migrate_command(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECO2_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "migrated:" in result.output
    again = CliRunner().invoke(cli, ["migrate", "auth"])  # idempotent
    assert again.exit_code == 0
    unknown = CliRunner().invoke(cli, ["migrate", "nope"])
    assert unknown.exit_code != 0


async def test_landing_page_favicon_and_headers(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/")
    assert page.status_code == 200
    # No model in this test setup: the page says what a photo will do and how to connect one.
    assert "VISION_UNAVAILABLE" in page.text
    assert "--model-url" in page.text
    assert "onclick" not in page.text  # handlers are attached by the page's one script
    policy = page.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert (await gateway.head("/")).status_code == 200
    icon = await gateway.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an icon directory…
    assert icon.content[22:26] == b"\x89PNG"  # …holding one PNG
    for entry in SERVICES.values():
        docs = await gateway.get(f"{entry.prefix}/docs")
        assert docs.status_code == 200, entry.name
        assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


def test_dev_command_with_a_model_url(tmp_path: Path, fake_llm_url: str) -> None:
    """``eco2 dev --model-url URL`` (issue 11.4): the scan service uses the endpoint's first listed
    model, and the landing page says so."""
    port = free_port()
    with eco2_dev(port, dev_environment(tmp_path), "--model-url", fake_llm_url, log=tmp_path / "dev.log"):
        page = httpx.get(f"http://127.0.0.1:{port}/").text
    assert "연결됨 (connected)" in page
    assert "<code>fake-vlm</code>" in page
    assert escape(fake_llm_url) in page
    assert f"model     fake-vlm at {fake_llm_url}" in (tmp_path / "dev.log").read_text()


def test_dev_command_says_when_the_model_url_answers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment equivalent of --model-url, pointing at a port where nothing listens.
    monkeypatch.setenv("SCAN_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    result = CliRunner().invoke(cli, ["dev"])
    assert result.exit_code != 0
    assert "cannot list the models" in result.output


@pytest.fixture(scope="module")
def fake_llm_url() -> Iterator[str]:
    with serve_asgi(FakeOpenAI().app()) as url:
        yield f"{url}/v1"
