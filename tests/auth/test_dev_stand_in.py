"""The client's Kakao/Google/Naver buttons against ``eco2 dev`` (issue 11.3): in development, a provider
without credentials is served by the development login form, labelled as such for that provider."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlparse

import httpx
import jwt
import pytest

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.config import CommonSettings
from tests.auth.flows import query, set_cookies, start
from tests.support.clients import app_client

HOME = "https://app.eco2.test/#/home"
UNCONFIGURED = {f"{p}_client_id": None for p in ("kakao", "google", "naver")}


@pytest.fixture
async def dev_client(
    migrated: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = auth_settings_factory(environment="development", **UNCONFIGURED)
    async with app_client(create_app(common=migrated, settings=settings)) as client:
        yield client


async def _log_in_through_form(client: httpx.AsyncClient, provider: str, login: str) -> tuple[str, httpx.Response]:
    data = await start(client, provider, frontend_origin="https://app.eco2.test")
    url = urlparse(data["authorization_url"])
    assert url.path == "/api/v1/auth/dev/authorize"
    params = query(data["authorization_url"])
    # Like a real provider: the browser comes back to this provider's own callback.
    assert params["redirect_uri"] == f"https://api.eco2.test/api/v1/auth/{provider}/callback"
    page = await client.get(url.path, params=params)
    assert page.status_code == 200
    state = re.search(r'name="state" value="([^"]+)"', page.text)
    assert state is not None
    posted = await client.post("/api/v1/auth/dev/authorize", data={"state": state.group(1), "login": login})
    location = urlparse(posted.headers["location"])
    assert location.path == f"/api/v1/auth/{provider}/callback"
    return page.text, await client.get(location.path, params=query(posted.headers["location"]))


@pytest.mark.parametrize(("provider", "label"), [("kakao", "카카오"), ("google", "구글"), ("naver", "네이버")])
async def test_unconfigured_provider_opens_a_labelled_dev_login(
    dev_client: httpx.AsyncClient, provider: str, label: str
) -> None:
    page, callback = await _log_in_through_form(dev_client, provider, "stand-in-user")
    assert f"<title>{label}" in page
    assert "DEVELOPMENT ONLY" in page
    assert "개발용 로그인" in page
    assert callback.headers["location"] == HOME
    access = set_cookies(callback)["s_access"].split(";")[0].split("=", 1)[1]
    # An honest session: the user logged in with the dev login, whichever button they pressed.
    assert jwt.decode(access, options={"verify_signature": False})["provider"] == "dev"


async def test_same_login_is_the_same_user_whichever_button(dev_client: httpx.AsyncClient) -> None:
    subjects = set()
    for provider in ("kakao", "google", "naver"):
        _, callback = await _log_in_through_form(dev_client, provider, "same-person")
        access = set_cookies(callback)["s_access"].split(";")[0].split("=", 1)[1]
        subjects.add(jwt.decode(access, options={"verify_signature": False})["sub"])
    assert len(subjects) == 1


async def test_configured_provider_is_never_replaced(
    migrated: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> None:
    settings = auth_settings_factory(environment="development", google_client_id=None, naver_client_id=None)
    async with app_client(create_app(common=migrated, settings=settings)) as client:
        kakao = await start(client, "kakao")
        assert kakao["authorization_url"].startswith("https://kauth.kakao.test/oauth/authorize?")
        google = await start(client, "google")
        assert urlparse(google["authorization_url"]).path == "/api/v1/auth/dev/authorize"


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "test"},  # only in development
        {"environment": "development", "dev_login_enabled": False},  # and only with dev login on
    ],
)
async def test_no_stand_in_outside_development(
    migrated: CommonSettings, auth_settings_factory: Callable[..., AuthSettings], overrides: dict[str, object]
) -> None:
    settings = auth_settings_factory(**UNCONFIGURED, **overrides)
    async with app_client(create_app(common=migrated, settings=settings)) as client:
        for provider in ("kakao", "google", "naver"):
            response = await client.get(f"/api/v1/auth/{provider}")
            assert response.status_code == 400
            assert response.json()["code"] == "UNSUPPORTED_PROVIDER"


async def test_dev_login_pages_carry_security_headers(dev_client: httpx.AsyncClient) -> None:
    data = await start(dev_client, "kakao", frontend_origin="https://app.eco2.test")
    page = await dev_client.get("/api/v1/auth/dev/authorize", params=query(data["authorization_url"]))
    policy = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"].startswith("'sha256-")  # its one inline stylesheet, by hash
    assert "script-src" not in directives  # no script at all
    assert directives["frame-ancestors"] == "'none'"
    # The form may lead to this page's origin, the callback and then the client — nowhere else.
    assert directives["form-action"].split() == [
        "'self'",
        "https://api.eco2.test",
        "https://app.eco2.test",
        "https://localhost:5173",
    ]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    error = await dev_client.get("/api/v1/auth/dev/authorize", params={"state": "unknown"})
    assert error.status_code == 400
    assert "frame-ancestors 'none'" in error.headers["content-security-policy"]
