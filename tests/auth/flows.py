"""Drive the login flows the way a browser and a provider would."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from services.common.cookies import LOGIN_COOKIE
from tests.auth.fake_providers import FakeProviders


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


async def start(client: httpx.AsyncClient, provider: str, **params: str) -> dict[str, Any]:
    """Start a login; the returned data carries the browser-binding cookie under ``login_cookie``."""
    response = await client.get(f"/api/v1/auth/{provider}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    cookie = set_cookies(response)[LOGIN_COOKIE].split(";", 1)[0]
    return dict(body["data"]) | {"login_cookie": cookie}


def _bound(data: dict[str, Any]) -> dict[str, str]:
    # The login cookie is Secure: a browser sends it to http://127.0.0.1 too (localhost counts as a
    # secure context) but httpx's cookie jar does not, so plain-HTTP clients pass it explicitly.
    return {"Cookie": str(data["login_cookie"])}


async def social_login(
    client: httpx.AsyncClient, fake: FakeProviders, provider: str, profile: dict[str, Any] | None = None, **params: str
) -> httpx.Response:
    """Full provider login; returns the callback's response (a 302)."""
    params.setdefault("frontend_origin", "https://app.eco2.test")
    data = await start(client, provider, **params)
    profile = profile or {"id": str(uuid.uuid4().int % 10**12), "nickname": "초록이", "email": "a@example.com"}
    code = fake.issue_code(provider, profile)
    return await client.get(
        f"/api/v1/auth/{provider}/callback", params={"code": code, "state": data["state"]}, headers=_bound(data)
    )


async def dev_login(client: httpx.AsyncClient, login: str = "tester", nickname: str = "") -> httpx.Response:
    """The dev provider: authorize page, form post, callback."""
    data = await start(client, "dev", frontend_origin="https://app.eco2.test")
    url = urlparse(data["authorization_url"])
    page = await client.get(url.path, params=query(data["authorization_url"]))
    assert page.status_code == 200, page.text
    assert "DEVELOPMENT" in page.text
    state = re.search(r'name="state" value="([^"]+)"', page.text)
    assert state is not None
    posted = await client.post(
        "/api/v1/auth/dev/authorize", data={"state": state.group(1), "login": login, "nickname": nickname}
    )
    assert posted.status_code == 302, posted.text
    location = urlparse(posted.headers["location"])
    return await client.get(location.path, params=query(posted.headers["location"]), headers=_bound(data))


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """name -> full Set-Cookie header value."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}
