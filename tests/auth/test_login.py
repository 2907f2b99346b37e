from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.auth.service import s256
from services.common.config import CommonSettings
from tests.auth.fake_providers import FakeProviders
from tests.auth.flows import dev_login, query, set_cookies, social_login, start
from tests.conftest import ClockControl
from tests.support.clients import app_client

HOME = "https://app.eco2.test/#/home"
FAILED = "https://app.eco2.test/#/login?error=oauth_failed"


@pytest.mark.parametrize("provider", ["kakao", "google", "naver"])
async def test_full_login_sets_both_cookies_and_returns_home(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str], provider: str
) -> None:
    fake, _ = fake_providers
    response = await social_login(auth_client, fake, provider)
    assert response.status_code == 302
    assert response.headers["location"] == HOME
    cookies = set_cookies(response)
    assert set(cookies) == {"s_access", "s_refresh", "s_oauth"}
    assert "Max-Age=0" in cookies["s_oauth"]  # the login cookie has done its job


async def test_dev_login_works_like_a_provider(auth_client: httpx.AsyncClient) -> None:
    response = await dev_login(auth_client, "dev.user-1", "개발자")
    assert response.status_code == 302
    assert response.headers["location"] == HOME
    assert set(set_cookies(response)) == {"s_access", "s_refresh", "s_oauth"}


@pytest.mark.parametrize(("provider", "pkce"), [("kakao", True), ("google", True), ("naver", False)])
async def test_pkce_verifier_sent_except_for_naver(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str], provider: str, pkce: bool
) -> None:
    fake, _ = fake_providers
    data = await start(auth_client, provider)
    params = query(data["authorization_url"])
    assert params["response_type"] == "code"
    assert params["state"] == data["state"]
    assert len(data["state"]) >= 43  # >= 256 bits, URL-safe
    code = fake.issue_code(provider, {"id": "4242", "nickname": "n"})
    await auth_client.get(f"/api/v1/auth/{provider}/callback", params={"code": code, "state": data["state"]})
    sent = fake.token_requests[-1]
    assert sent["provider"] == provider
    if pkce:
        assert params["code_challenge_method"] == "S256"
        assert len(sent["code_verifier"]) == 64
        assert s256(sent["code_verifier"]) == params["code_challenge"]
    else:
        assert "code_challenge" not in params
        assert "code_verifier" not in sent
        assert sent["state"] == data["state"]


async def test_google_asks_for_openid_scopes(auth_client: httpx.AsyncClient) -> None:
    data = await start(auth_client, "google")
    assert query(data["authorization_url"])["scope"] == "openid email profile"


async def test_state_is_single_use(auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]) -> None:
    fake, _ = fake_providers
    data = await start(auth_client, "kakao", frontend_origin="https://app.eco2.test")
    first = fake.issue_code("kakao", {"id": "1001"})
    ok = await auth_client.get("/api/v1/auth/kakao/callback", params={"code": first, "state": data["state"]})
    assert ok.headers["location"] == HOME
    second = fake.issue_code("kakao", {"id": "1001"})
    replay = await auth_client.get("/api/v1/auth/kakao/callback", params={"code": second, "state": data["state"]})
    assert replay.status_code == 302
    assert replay.headers["location"] == FAILED
    assert "set-cookie" not in replay.headers


async def test_unknown_state_fails_to_default_frontend(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    code = fake.issue_code("kakao", {"id": "1002"})
    response = await auth_client.get("/api/v1/auth/kakao/callback", params={"code": code, "state": "nope"})
    assert response.status_code == 302
    assert response.headers["location"] == FAILED
    assert "set-cookie" not in response.headers


async def test_state_for_another_provider_fails(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    data = await start(auth_client, "kakao")
    code = fake.issue_code("google", {"id": "1003"})
    response = await auth_client.get("/api/v1/auth/google/callback", params={"code": code, "state": data["state"]})
    assert response.headers["location"] == FAILED


async def test_expired_state_fails(
    migrated: CommonSettings,
    auth_settings_factory: Callable[..., AuthSettings],
    fake_providers: tuple[FakeProviders, str],
    clock: ClockControl,
) -> None:
    fake, _ = fake_providers
    app = create_app(common=migrated, settings=auth_settings_factory(state_ttl_seconds=1))
    async with app_client(app) as client:
        data = await start(client, "kakao")
        await clock.advance_stores(1.3)
        code = fake.issue_code("kakao", {"id": "1004"})
        response = await client.get("/api/v1/auth/kakao/callback", params={"code": code, "state": data["state"]})
    assert response.headers["location"] == FAILED


async def test_provider_error_and_refused_code_fail(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    _fake, _ = fake_providers
    data = await start(auth_client, "kakao")
    cancelled = await auth_client.get(
        "/api/v1/auth/kakao/callback", params={"error": "access_denied", "state": data["state"]}
    )
    assert cancelled.headers["location"] == FAILED
    data = await start(auth_client, "naver")
    refused = await auth_client.get("/api/v1/auth/naver/callback", params={"code": "forged", "state": data["state"]})
    assert refused.headers["location"] == FAILED


async def test_unknown_or_unconfigured_provider_is_400(
    migrated: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> None:
    app = create_app(common=migrated, settings=auth_settings_factory(naver_client_id=None, dev_login_enabled=False))
    async with app_client(app) as client:
        for provider in ("github", "naver", "dev"):
            response = await client.get(f"/api/v1/auth/{provider}")
            assert response.status_code == 400
            assert response.json() == {"detail": response.json()["detail"], "code": "UNSUPPORTED_PROVIDER"}
        assert (await client.get("/api/v1/auth/dev/start")).status_code == 404
        assert (await client.get("/api/v1/auth/dev/authorize")).status_code == 404


async def test_redirect_uri_must_be_registered(auth_client: httpx.AsyncClient) -> None:
    bad = await auth_client.get("/api/v1/auth/kakao", params={"redirect_uri": "https://evil.test/cb"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "INVALID_REDIRECT_URI"
    default = "https://api.eco2.test/api/v1/auth/kakao/callback"
    ok = await start(auth_client, "kakao", redirect_uri=default)
    assert query(ok["authorization_url"])["redirect_uri"] == default
    alt = await start(auth_client, "naver", redirect_uri="https://api.eco2.test/alt/naver/callback")
    assert query(alt["authorization_url"])["redirect_uri"] == "https://api.eco2.test/alt/naver/callback"


async def test_frontend_origin_outside_allow_list_is_never_redirected_to(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    fake, _ = fake_providers
    response = await social_login(auth_client, fake, "kakao", frontend_origin="https://evil.test")
    assert response.headers["location"] == HOME  # the configured default, not evil.test
    via_header = await auth_client.get("/api/v1/auth/kakao", headers={"X-Frontend-Origin": "https://localhost:5173"})
    state = via_header.json()["data"]["state"]
    code = fake.issue_code("kakao", {"id": "1005"})
    back = await auth_client.get("/api/v1/auth/kakao/callback", params={"code": code, "state": state})
    assert back.headers["location"] == "https://localhost:5173/#/home"


async def test_cookie_attributes(auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]) -> None:
    fake, _ = fake_providers
    response = await social_login(auth_client, fake, "google")
    for name in ("s_access", "s_refresh"):
        header = set_cookies(response)[name]
        attributes = [part.strip() for part in header.split(";")]
        assert "HttpOnly" in attributes
        assert "Secure" in attributes
        assert "SameSite=Lax" in attributes
        assert "Path=/" in attributes
        assert not any(a.startswith("Domain=") for a in attributes)
        max_age = int(next(a for a in attributes if a.startswith("Max-Age=")).split("=")[1])
        expected = 3600 if name == "s_access" else 14 * 24 * 3600
        assert expected - 5 <= max_age <= expected


async def test_cookie_domain_when_configured(
    migrated: CommonSettings,
    auth_settings_factory: Callable[..., AuthSettings],
    fake_providers: tuple[FakeProviders, str],
) -> None:
    fake, _ = fake_providers
    app = create_app(common=migrated, settings=auth_settings_factory(cookie_domain="eco2.test"))
    async with app_client(app) as client:
        response = await social_login(client, fake, "kakao")
    cookies = set_cookies(response)
    assert "Domain=eco2.test" in cookies["s_access"]
    assert "Domain=eco2.test" in cookies["s_refresh"]
    assert "Domain=" not in cookies["s_oauth"]  # host-only: only the API host reads it


async def test_same_identity_logs_into_same_account_new_identity_new_account(
    auth_client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str]
) -> None:
    import jwt

    fake, _ = fake_providers

    async def subject(provider: str, profile: dict[str, str]) -> str:
        response = await social_login(auth_client, fake, provider, profile)
        token = set_cookies(response)["s_access"].split(";")[0].split("=", 1)[1]
        return str(jwt.decode(token, options={"verify_signature": False})["sub"])

    first = await subject("kakao", {"id": "777", "nickname": "첫째"})
    again = await subject("kakao", {"id": "777", "nickname": "바뀐이름"})
    other = await subject("google", {"id": "777"})
    assert first == again
    assert other != first


async def test_dev_login_rejects_bad_input(auth_client: httpx.AsyncClient) -> None:
    data = await start(auth_client, "dev")
    params = query(data["authorization_url"])
    await auth_client.get("/api/v1/auth/dev/authorize", params=params)
    bad = await auth_client.post("/api/v1/auth/dev/authorize", data={"state": data["state"], "login": "no spaces!"})
    assert bad.status_code == 400
    assert "text/html" in bad.headers["content-type"]
    unknown = await auth_client.get("/api/v1/auth/dev/authorize", params={**params, "state": "unknown"})
    assert unknown.status_code == 400
    no_pkce = await auth_client.get("/api/v1/auth/dev/authorize", params={**params, "code_challenge_method": "plain"})
    assert no_pkce.status_code == 400


async def test_dev_start_redirects_to_login_page(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get("/api/v1/auth/dev/start", params={"frontend_origin": "https://app.eco2.test"})
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://api.eco2.test/api/v1/auth/dev/authorize?")


async def test_dev_code_is_bound_to_verifier(auth_client: httpx.AsyncClient) -> None:
    """A dev code redeemed with another login's state (so another verifier) fails."""
    data = await start(auth_client, "dev")
    await auth_client.get("/api/v1/auth/dev/authorize", params=query(data["authorization_url"]))
    posted = await auth_client.post("/api/v1/auth/dev/authorize", data={"state": data["state"], "login": "x"})
    code = query(posted.headers["location"])["code"]
    other = await start(auth_client, "dev")
    response = await auth_client.get("/api/v1/auth/dev/callback", params={"code": code, "state": other["state"]})
    assert response.headers["location"] == FAILED
