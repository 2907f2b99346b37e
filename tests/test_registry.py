"""The registry entry is the one place that names a service: everything else agrees with it."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator

import httpx
import pytest
import typer
from fastapi import APIRouter
from fastapi.routing import APIRoute

from services.common.app import create_service_app
from services.common.config import CommonSettings
from services.common.domain_events import EventName
from services.common.identity import ServiceEntry, load
from services.registry import SERVICES
from services.workers import service_workers, topology
from tests.support.clients import app_client


def routes(app: object) -> list[str]:
    """Every route path of an app, prefixes included (FastAPI keeps included routers lazily)."""
    openapi = app.openapi()  # type: ignore[attr-defined]
    return list(openapi["paths"])


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_public_route_lives_under_the_registered_prefix(name: str, migrated: CommonSettings) -> None:
    entry = SERVICES[name]
    app = entry.create_app(common=migrated)
    paths = routes(app)
    assert paths, name
    assert all(p.startswith(entry.prefix + "/") or p == entry.prefix for p in paths), paths
    assert app.docs_url == f"{entry.prefix}/docs"


@pytest.mark.parametrize("name", [n for n, e in SERVICES.items() if e.consumers])
def test_consumers_are_named_after_their_service_and_bound_by_their_handlers(name: str) -> None:
    module = importlib.import_module(str(SERVICES[name].consumers))
    assert module.consumer.name == name
    assert module.EVENT_TYPES == module.consumer.topology() == {name: module.consumer.event_types}
    assert module.consumer.event_types
    assert set(module.consumer.event_types) <= {str(e) for e in EventName}
    assert topology()[name] == module.consumer.event_types


@pytest.mark.parametrize("name", [n for n, e in SERVICES.items() if e.outbox])
def test_outbox_lives_in_the_service_schema(name: str) -> None:
    model = load(str(SERVICES[name].outbox))
    assert model.__table__.schema == name


def test_workers_and_commands_resolve() -> None:
    assert service_workers() == {
        "scan": "services.scan.worker:run_scan_worker",
        "info-refresh": "services.info.worker:run_news_refresher",
        "chat": "services.chat.worker:run_chat_worker",
    }
    for target in service_workers().values():
        assert callable(load(target))
    for entry in SERVICES.values():
        if entry.commands:
            assert isinstance(load(entry.commands), typer.Typer)


def test_internal_urls_come_from_the_entry() -> None:
    image = SERVICES["image"]
    assert image.internal_prefix == "/internal/v1/images"
    assert image.internal_url("http://image:8000/", "/resolve") == "http://image:8000/internal/v1/images/resolve"
    assert SERVICES["my"].public_url("https://api.eco2.test", "/me") == "https://api.eco2.test/api/v1/users/me"


# A service added by one entry: relative routers, mounted by the kernel where the entry says.
THROWAWAY = ServiceEntry("throwaway", "/api/v1/throwaway", "tests.test_registry:THROWAWAY", has_migrations=False)
public = APIRouter()
internal = APIRouter()


@public.get("/ping")
async def ping() -> dict[str, str]:
    return {"pong": "public"}


@internal.get("/ping")
async def internal_ping() -> dict[str, str]:
    return {"pong": "internal"}


@pytest.fixture
async def throwaway(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(THROWAWAY, common=migrated, routers=[public], internal=[internal])
    async with app_client(app) as client:
        yield client


async def test_a_new_entry_mounts_its_routers_and_guards_its_internal_ones(
    throwaway: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    assert (await throwaway.get("/api/v1/throwaway/ping")).json() == {"pong": "public"}
    internal_url = THROWAWAY.internal_url("", "/ping")
    refused = await throwaway.get(internal_url)
    assert (refused.status_code, refused.json()["code"]) == (401, "INTERNAL_AUTH_FAILED")
    allowed = await throwaway.get(internal_url, headers={"X-Internal-Token": migrated.internal_token})
    assert allowed.json() == {"pong": "internal"}
    schema = (await throwaway.get("/api/v1/throwaway/openapi.json")).json()
    assert list(schema["paths"]) == ["/api/v1/throwaway/ping"]  # internal routes stay out of the schema
    metrics = (await throwaway.get("/metrics")).text
    assert 'route="/api/v1/throwaway/ping"' in metrics
    assert 'route="/internal/v1/throwaway/ping"' in metrics
    assert all(isinstance(r, APIRoute) and not r.path.startswith("/api") for r in public.routes)
