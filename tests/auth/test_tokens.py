"""Refresh rotation, reuse detection, the grace window, logout and JWKS (docs/api.md, auth: tokens, refresh)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.config import CommonSettings
from tests.auth.fake_providers import FakeProviders
from tests.auth.flows import set_cookies, social_login
from tests.conftest import ClockControl
from tests.support.clients import app_client
from tests.support.tokens import issuer


def cookie_value(response: httpx.Response, name: str) -> str:
    return set_cookies(response)[name].split(";")[0].split("=", 1)[1]


async def login(client: httpx.AsyncClient, fake: FakeProviders) -> tuple[str, str]:
    response = await social_login(client, fake, "kakao")
    client.cookies.clear()  # each test sends exactly the cookies it means to
    return cookie_value(response, "s_access"), cookie_value(response, "s_refresh")


async def post(client: httpx.AsyncClient, path: str, **cookies: str) -> httpx.Response:
    """POST with exactly these cookies (the client's jar is emptied, so nothing else rides along)."""
    client.cookies.clear()
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return await client.post(path, headers={"Cookie": header} if header else {})


async def refresh(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    return await post(client, "/api/v1/auth/refresh", **({"s_refresh": token} if token else {}))


def claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_refresh_rotates_both_tokens_in_the_same_session(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    access, refresh_token = await login(auth_client, fake)
    response = await refresh(auth_client, refresh_token)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["access_expires_at"].endswith("Z")
    new_access, new_refresh = cookie_value(response, "s_access"), cookie_value(response, "s_refresh")
    assert new_refresh != refresh_token
    assert new_access != access
    old, new = claims(refresh_token), claims(new_refresh)
    assert old["sid"] == new["sid"]
    assert new["type"] == "refresh"
    assert claims(new_access)["nbf"] == claims(new_access)["iat"]
    again = await refresh(auth_client, new_refresh)  # the successor is current now
    assert again.status_code == 200


async def test_reuse_outside_grace_revokes_the_whole_session(
    migrated: CommonSettings,
    auth_settings_factory: Callable[..., AuthSettings],
    fake_providers: tuple[FakeProviders, str],
    clock: ClockControl,
) -> None:
    fake, _ = fake_providers
    app = create_app(common=migrated, settings=auth_settings_factory(refresh_grace_seconds=1))
    async with app_client(app) as client:
        await _reuse_scenario(client, fake, clock)


async def _reuse_scenario(auth_client: httpx.AsyncClient, fake: FakeProviders, clock: ClockControl) -> None:
    _, first = await login(auth_client, fake)
    second = cookie_value(await refresh(auth_client, first), "s_refresh")
    third = cookie_value(await refresh(auth_client, second), "s_refresh")
    await clock.advance_stores(1.2)  # past the (shortened) grace window: presenting `first` now is theft
    stolen = await refresh(auth_client, first)
    assert stolen.status_code == 401
    assert stolen.json()["code"] == "REFRESH_TOKEN_REVOKED"
    cleared = set_cookies(stolen)
    assert "Max-Age=0" in cleared["s_access"]
    assert "Max-Age=0" in cleared["s_refresh"]
    # Every token of the family is dead now, including the legitimate newest one.
    legit = await refresh(auth_client, third)
    assert legit.status_code == 401
    assert legit.json()["code"] == "REFRESH_TOKEN_REVOKED"


async def test_concurrent_refreshes_inside_grace_get_the_same_pair(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    _, token = await login(auth_client, fake)
    responses = await asyncio.gather(*(refresh(auth_client, token) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert len({cookie_value(r, "s_refresh") for r in responses}) == 1
    assert len({cookie_value(r, "s_access") for r in responses}) == 1
    late = await refresh(auth_client, token)  # still within 30 s: same successor, not theft
    assert late.status_code == 200
    assert cookie_value(late, "s_refresh") == cookie_value(responses[0], "s_refresh")


async def test_refresh_errors(auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]) -> None:
    fake, _ = fake_providers
    missing = await refresh(auth_client, None)
    assert missing.status_code == 401
    assert missing.json()["code"] == "REFRESH_TOKEN_MISSING"
    garbage = await refresh(auth_client, "not-a-jwt")
    assert garbage.json()["code"] == "REFRESH_TOKEN_INVALID"
    access, _ = await login(auth_client, fake)
    wrong_type = await refresh(auth_client, access)  # an access token is not a refresh token
    assert wrong_type.status_code == 401
    assert wrong_type.json()["code"] == "REFRESH_TOKEN_INVALID"


async def test_logout_always_200_and_revokes(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    for cookies in ({}, {"s_access": "garbage", "s_refresh": "garbage"}):
        response = await post(auth_client, "/api/v1/auth/logout", **cookies)
        assert response.status_code == 200
        assert response.json() == {"success": True, "data": {"message": "logged out"}}
        assert "Max-Age=0" in set_cookies(response)["s_refresh"]
    access, refresh_token = await login(auth_client, fake)
    out = await post(auth_client, "/api/v1/auth/logout", s_access=access, s_refresh=refresh_token)
    assert out.status_code == 200
    after = await refresh(auth_client, refresh_token)
    assert after.status_code == 401
    assert after.json()["code"] == "REFRESH_TOKEN_REVOKED"
    twice = await post(auth_client, "/api/v1/auth/logout", s_access=access, s_refresh=refresh_token)
    assert twice.status_code == 200  # revoked cookies are still a 200


async def test_logout_with_expired_tokens_is_200(auth_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    expired = issuer(migrated).issue(uuid.uuid4(), uuid.uuid4(), "kakao", int(time.time()) - 30 * 24 * 3600)
    response = await post(auth_client, "/api/v1/auth/logout", s_access=expired.access, s_refresh=expired.refresh)
    assert response.status_code == 200
    assert "Max-Age=0" in set_cookies(response)["s_access"]


async def test_jwks_publishes_the_signing_key(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    response = await auth_client.get("/api/v1/auth/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert keys
    assert all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig" for k in keys)
    access, _ = await login(auth_client, fake)
    header = jwt.get_unverified_header(access)
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    key = next(k for k in keys if k["kid"] == header["kid"])

    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    public = RSAPublicNumbers(number(key["e"]), number(key["n"])).public_key()
    assert public.key_size >= 2048
    decoded = jwt.decode(access, public, algorithms=["RS256"], audience="eco2-api")
    assert decoded["iss"] == "https://api.eco2.test/api/v1/auth"
    assert decoded["provider"] == "kakao"
    assert decoded["exp"] - decoded["iat"] == 3600
    assert json.dumps(decoded)  # plain JSON claims
