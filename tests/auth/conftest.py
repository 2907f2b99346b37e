from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.config import CommonSettings
from tests.auth.fake_providers import FakeProviders
from tests.support.clients import app_client
from tests.support.servers import serve_asgi

FRONTEND = "https://app.eco2.test"


@pytest.fixture(scope="session")
def fake_providers() -> Iterator[tuple[FakeProviders, str]]:
    fake = FakeProviders()
    with serve_asgi(fake.app()) as url:
        yield fake, url


@pytest.fixture
def auth_settings_factory(fake_providers: tuple[FakeProviders, str]) -> Callable[..., AuthSettings]:
    _, url = fake_providers

    def build(**overrides: Any) -> AuthSettings:
        values: dict[str, Any] = {
            "environment": "test",
            "frontend_url": FRONTEND,
            "dev_login_enabled": True,
            "secret_key": "test-secret-key-0123456789",
            "kakao_client_id": "kakao-client",
            "kakao_client_secret": "kakao-secret",
            "kakao_token_url": f"{url}/kakao/token",
            "kakao_profile_url": f"{url}/kakao/me",
            "kakao_authorize_url": "https://kauth.kakao.test/oauth/authorize",
            "google_client_id": "google-client",
            "google_client_secret": "google-secret",
            "google_token_url": f"{url}/google/token",
            "google_profile_url": f"{url}/google/userinfo",
            "naver_client_id": "naver-client",
            "naver_client_secret": "naver-secret",
            "naver_token_url": f"{url}/naver/token",
            "naver_profile_url": f"{url}/naver/me",
            "naver_redirect_uris": ["https://api.eco2.test/alt/naver/callback"],
        }
        values.update(overrides)
        return AuthSettings(**values)

    return build


@pytest.fixture
async def auth_client(
    migrated: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(common=migrated, settings=auth_settings_factory())) as client:
        yield client
