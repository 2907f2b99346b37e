"""The dev gateway: every registered service behind one origin, prefixes dispatched, workers running."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
