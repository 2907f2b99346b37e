from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from services.common.config import CommonSettings
from services.image.app import create_app
from services.image.config import ImageSettings
from tests.conftest import REAL
from tests.support.clients import app_client
from tests.support.images import local_settings, moto_s3, s3_settings


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str | None]:
    if not REAL:
        yield None
        return
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def image_settings(s3_endpoint: str | None) -> ImageSettings:
    return s3_settings(s3_endpoint) if s3_endpoint else local_settings()


@pytest.fixture
def image_app(migrated: CommonSettings, image_settings: ImageSettings) -> FastAPI:
    return create_app(common=migrated, settings=image_settings)


@pytest.fixture
async def image_client(image_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(image_app) as client:
        yield client
