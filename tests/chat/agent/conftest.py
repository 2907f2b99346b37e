"""Fixtures of the assistant's tests: a recording emitter, the location and my apps behind one ASGI
dispatcher (their real internal routes, real databases of the test mode), and the toolbox on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.chat.agent.answerer import Eco2Assistant
from services.chat.agent.build import build_assistant
from services.chat.agent.config import AgentSettings
from services.chat.assistant import AskContext, Position, Turn
from services.common.config import CommonSettings
from services.common.db import Database
from services.location.app import create_app as location_app
from services.location.config import LocationSettings
from services.my.app import create_app as my_app
from services.my.config import MySettings
from tests.location.conftest import load_sites, location_db, site

__all__ = ["location_db"]

SEOUL_CITY_HALL = Position(37.5665, 126.9780)


@dataclass
class RecordingEmitter:
    """A test double of the runner's Emitter: records every call in order; ``ask_location`` answers
    with ``position`` (None = the user cancelled or did not answer)."""

    position: Position | None = None
    events: list[tuple[str, ...]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    deltas: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    async def stage(self, name: str, status: str, *, result: dict[str, Any] | None = None,
                    message: str | None = None) -> None:  # fmt: skip
        self.events.append((name, status))
        if result is not None:
            self.results[name] = result

    async def token(self, delta: str, *, node: str | None = None) -> None:
        self.events.append(("token",))
        self.deltas.append(delta)

    async def ask_location(self, message: str) -> Position | None:
        self.asked.append(message)
        self.events.append(("needs_input",))
        return self.position

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    def stages(self) -> list[tuple[str, str]]:
        return [(e[0], e[1]) for e in self.events if len(e) == 2]


def ask(message: str, *, location: Position | None = None, history: tuple[Turn, ...] = (),
        image_url: str | None = None, model: str | None = None, user_id: uuid.UUID | None = None) -> AskContext:  # fmt: skip
    return AskContext(uuid.uuid4(), uuid.uuid4(), user_id or uuid.uuid4(), message, image_url, location, model, history)


def dispatcher(apps: dict[str, Any]) -> Any:
    """One ASGI app in front of several services, by path prefix (what the dev gateway does)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        target = next(a for prefix, a in apps.items() if path.startswith(prefix))
        await target(scope, receive, send)

    return app


SITES = (
    # Distances from Seoul City Hall (37.5665, 126.9780): about 0.3 km, 1.1 km, 2.4 km, 9 km.
    site(9001, 37.5690, 126.9790, "시청앞 자원순환가게", collection_items="투명페트병, 캔, 종이"),
    site(9002, 37.5760, 126.9800, "광화문 무인회수기", collection_items="캔, 페트"),
    site(9003, 37.5550, 126.9950, "남산 재활용 정거장", collection_items="의류, 소형 전자제품"),
    site(9004, 37.6400, 127.0300, "먼 곳 거점"),
)


@pytest.fixture(scope="session")
async def services_http(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    loc = location_app(common=migrated, settings=LocationSettings(environment="test", seed_sample_data=False))
    my = my_app(common=migrated, settings=MySettings(environment="test"))
    async with LifespanManager(loc) as lm, LifespanManager(my) as mm:
        app = dispatcher({"/internal/v1/locations": lm.app, "/internal/v1/users": mm.app})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://services") as client:
            yield client


@pytest.fixture
async def assistant(
    migrated: CommonSettings, services_http: httpx.AsyncClient, location_db: Database
) -> AsyncIterator[Eco2Assistant]:
    """The offline assistant (no model configured) as build_assistant makes it, on the real services."""
    await load_sites(location_db, *SITES)  # per test: the location tests reset the same table
    settings = AgentSettings(environment="test", tool_location_url="http://services", tool_my_url="http://services")
    built = build_assistant(migrated, settings, http=services_http)
    yield built
    await built.aclose()
