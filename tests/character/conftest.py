from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.character.app import create_app
from services.character.config import CharacterSettings
from services.common.config import CommonSettings
from tests.support.clients import app_client

INTERNAL = {"X-Internal-Token": "test-internal-token"}


@pytest.fixture
async def character_client(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(common=migrated, settings=CharacterSettings(environment="test"))) as client:
        yield client
