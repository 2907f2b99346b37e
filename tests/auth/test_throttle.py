"""Throttling of the unauthenticated auth endpoints (issue 12.6): floods of login starts, callbacks and
refreshes are refused per client address and globally with 429 + Retry-After, and the login-state
store stays bounded."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.config import CommonSettings
from services.common.ratelimit import address_key
from tests.auth.fake_providers import FakeProviders
from tests.auth.flows import set_cookies, social_login
from tests.support.clients import app_clients

ORIGIN = {"Origin": "https://app.eco2.test"}
FAILED = "https://app.eco2.test/#/login?error=oauth_failed"


@pytest.fixture
def common(migrated: CommonSettings) -> CommonSettings:
    """Counters of this test only: in real mode they live in Redis, shared by the whole run."""
    return migrated.model_copy(update={"redis_key_prefix": f"{migrated.redis_key_prefix}{uuid.uuid4().hex[:8]}:"})


def _addresses(count: int) -> list[str]:
    return [f"10.0.0.{i + 1}" for i in range(count)]


async def test_login_start_flood_from_one_address_is_429(
    common: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> None:
    settings = auth_settings_factory(login_per_address=5, login_global=1000)
    flooder, other = _addresses(2)
    async with app_clients(create_app(common=common, settings=settings), flooder, other) as (attack, bystander):
        statuses = [(await attack.get("/api/v1/auth/kakao", headers=ORIGIN)).status_code for _ in range(5)]
        assert statuses == [200] * 5
        refused = await attack.get("/api/v1/auth/kakao", headers=ORIGIN)
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # The client can read Retry-After across origins, and no state or login cookie was written.
        assert refused.headers["access-control-expose-headers"] == "Retry-After"
        assert "set-cookie" not in refused.headers
        assert (await attack.get("/api/v1/auth/dev/start")).status_code == 429
        # Another address is unaffected.
        assert (await bystander.get("/api/v1/auth/kakao")).status_code == 200


async def test_global_limit_bounds_the_state_store_across_addresses(
    common: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> None:
    """A distributed flood (one start per address) stops at the global limit: at most that many
    state entries exist per window, whatever the number of addresses."""
    settings = auth_settings_factory(login_per_address=100, login_global=8)
    hosts = _addresses(12)
    app = create_app(common=common, settings=settings)
    async with app_clients(app, *hosts) as clients:
        responses = [await client.get("/api/v1/auth/google") for client in clients]
        assert [r.status_code for r in responses] == [200] * 8 + [429] * 4
        states = [f"auth:state:{r.json()['data']['state']}" for r in responses[:8]]
        assert await app.state.auth.kv.count_existing(*states) == 8
        assert all("set-cookie" not in r.headers for r in responses[8:])  # refused: nothing stored


async def test_callback_flood_ends_on_the_login_page_with_retry_after(
    common: CommonSettings,
    auth_settings_factory: Callable[..., AuthSettings],
    fake_providers: tuple[FakeProviders, str],
) -> None:
    settings = auth_settings_factory(callback_per_address=3, callback_global=1000)
    fake, _ = fake_providers
    (host,) = _addresses(1)
    async with app_clients(create_app(common=common, settings=settings), host) as (client,):
        for _ in range(3):
            bad = await client.get("/api/v1/auth/kakao/callback", params={"code": "x", "state": "forged"})
            assert bad.headers["location"] == FAILED
            assert "retry-after" not in bad.headers
        throttled = await client.get("/api/v1/auth/kakao/callback", params={"code": "x", "state": "forged"})
        # A callback is a browser navigation: the contract's redirect (never a 4xx page), with the wait.
        assert throttled.status_code == 302
        assert throttled.headers["location"] == FAILED
        assert int(throttled.headers["retry-after"]) >= 1
        # Even a genuine login from that address waits: its callback is refused the same way.
        genuine = await social_login(client, fake, "kakao")
        assert genuine.headers["location"] == FAILED
        assert "s_access" not in set_cookies(genuine)


async def test_refresh_flood_is_429_and_keeps_cookies(
    common: CommonSettings,
    auth_settings_factory: Callable[..., AuthSettings],
    fake_providers: tuple[FakeProviders, str],
) -> None:
    settings = auth_settings_factory(refresh_per_address=3, refresh_global=1000)
    fake, _ = fake_providers
    (host,) = _addresses(1)
    async with app_clients(create_app(common=common, settings=settings), host) as (client,):
        await social_login(client, fake, "naver")
        for _ in range(3):
            assert (await client.post("/api/v1/auth/refresh")).status_code == 200
        refused = await client.post("/api/v1/auth/refresh", headers=ORIGIN)
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        assert "set-cookie" not in refused.headers  # a throttled refresh revokes and clears nothing
        assert refused.headers["access-control-allow-origin"] == "https://app.eco2.test"


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),  # same /64: one subscriber, one budget
        (None, "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_address_key(host: str | None, key: str) -> None:
    assert address_key(host) == key
