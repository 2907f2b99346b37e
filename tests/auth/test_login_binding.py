"""Login CSRF / session fixation (issue 12.2): a login flow finishes only in the browser that started it.

The attack: the attacker starts a login in their own browser, authorizes at the provider with their
own account, stops before the callback and sends the callback link to the victim. Opened by the
victim, it must not log the victim's browser in as the attacker.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlparse

import httpx
import pytest

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.config import CommonSettings
from tests.auth.fake_providers import FakeProviders
from tests.auth.flows import query, set_cookies, start
from tests.support.clients import app_clients

FAILED = "https://app.eco2.test/#/login?error=oauth_failed"
HOME = "https://app.eco2.test/#/home"


@pytest.fixture
async def browsers(
    migrated: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two browsers (separate cookie jars) against one auth service: the attacker's and the victim's."""
    app = create_app(common=migrated, settings=auth_settings_factory())
    async with app_clients(app, "198.51.100.7", "203.0.113.9") as (attacker, victim):
        yield attacker, victim


async def _attacker_callback_link(attacker: httpx.AsyncClient, fake: FakeProviders, provider: str) -> str:
    data = await start(attacker, provider, frontend_origin="https://app.eco2.test")
    code = fake.issue_code(provider, {"id": "666", "nickname": "공격자"})
    return f"/api/v1/auth/{provider}/callback?code={code}&state={data['state']}"


async def _attacker_dev_callback_link(attacker: httpx.AsyncClient) -> str:
    data = await start(attacker, "dev", frontend_origin="https://app.eco2.test")
    url = urlparse(data["authorization_url"])
    page = await attacker.get(url.path, params=query(data["authorization_url"]))
    state = re.search(r'name="state" value="([^"]+)"', page.text)
    assert state is not None
    posted = await attacker.post("/api/v1/auth/dev/authorize", data={"state": state.group(1), "login": "attacker"})
    assert posted.status_code == 302
    location = urlparse(posted.headers["location"])
    return f"{location.path}?{location.query}"


@pytest.mark.parametrize("provider", ["kakao", "google", "naver", "dev"])
async def test_callback_link_from_another_browser_does_not_log_in(
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient], fake_providers: tuple[FakeProviders, str], provider: str
) -> None:
    attacker, victim = browsers
    fake, _ = fake_providers
    if provider == "dev":
        link = await _attacker_dev_callback_link(attacker)
    else:
        link = await _attacker_callback_link(attacker, fake, provider)
    opened = await victim.get(link)
    assert opened.status_code == 302
    assert opened.headers["location"] == FAILED
    assert "s_access" not in set_cookies(opened)
    assert "s_access" not in victim.cookies
    # The state is spent by the failed attempt: the link is useless afterwards, even to its maker.
    again = await attacker.get(link)
    assert again.headers["location"] == FAILED


async def test_victim_with_own_login_in_flight_is_not_switched(
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient], fake_providers: tuple[FakeProviders, str]
) -> None:
    """Holding a login cookie of one's own is not enough: it must be the one the state was made for."""
    attacker, victim = browsers
    fake, _ = fake_providers
    await start(victim, "kakao")
    assert victim.cookies.get("s_oauth", path="/api/v1/auth")
    link = await _attacker_callback_link(attacker, fake, "kakao")
    opened = await victim.get(link)
    assert opened.headers["location"] == FAILED
    assert "s_access" not in victim.cookies


async def test_login_cookie_attributes(browsers: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    attacker, _ = browsers
    response = await attacker.get("/api/v1/auth/google", params={"frontend_origin": "https://app.eco2.test"})
    header = set_cookies(response)["s_oauth"]
    attributes = [part.strip() for part in header.split(";")]
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/api/v1/auth", "Max-Age=600"} <= set(attributes)
    assert not any(a.startswith("Domain=") for a in attributes)
    assert response.json()["data"]["state"] not in header  # the nonce is not the state
    dev = await attacker.get("/api/v1/auth/dev/start")
    assert "s_oauth" in set_cookies(dev)


async def test_the_starting_browser_still_logs_in(
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient], fake_providers: tuple[FakeProviders, str]
) -> None:
    attacker, _ = browsers
    fake, _ = fake_providers
    link = await _attacker_callback_link(attacker, fake, "kakao")
    own = await attacker.get(link)
    assert own.headers["location"] == HOME
    assert {"s_access", "s_refresh"} <= set(set_cookies(own))
