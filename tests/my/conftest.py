from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from services.common.clock import iso_ms, utcnow
from services.common.config import CommonSettings
from services.common.events import Event, new_event_id
from services.common.runtime import ServiceRuntime
from services.my.app import create_app
from services.my.config import MySettings
from services.my.consumers import build
from tests.support.clients import app_client
from tests.support.tokens import issue_tokens


@pytest.fixture
async def my_client(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(common=migrated, settings=MySettings(environment="test"))) as client:
        yield client


class User:
    """A user with a fresh session: bearer headers and the raw tokens."""

    def __init__(self, common: CommonSettings, provider: str = "kakao") -> None:
        self.id = uuid.uuid4()
        self.tokens = issue_tokens(common, self.id, provider=provider)
        self.headers = {"Authorization": f"Bearer {self.tokens.access}"}


@pytest.fixture
def new_user(migrated: CommonSettings) -> User:
    return User(migrated)


Deliver = Callable[..., Awaitable[Event]]


@pytest.fixture
async def deliver(migrated: CommonSettings) -> AsyncIterator[Deliver]:
    """Hand an event to the my service's consumer as the bus would (inbox, commit, broadcast)."""
    runtime = ServiceRuntime("my", "my", migrated)
    [subscription] = build(runtime)

    async def send(event_type: str, payload: dict[str, Any], event_id: str | None = None) -> Event:
        event = Event(event_id or new_event_id(), event_type, payload, iso_ms(utcnow()), "test")
        await subscription.handler(event)
        return event

    yield send
    await runtime.close()
