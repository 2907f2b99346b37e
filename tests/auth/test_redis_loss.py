"""Redis flushed after sessions were revoked (real mode, a private redis-server — never the shared one).

The revocation keys in Redis make a revoked *access* token fail everywhere within a second; a flush
loses them, and docs/redis.md accepts what that costs: a revoked access token may work again until it
expires (``AUTH_ACCESS_TTL_SECONDS``). It must never cost more: the session's revocation is also on
its PostgreSQL row, which the refresh endpoint checks, so no new access token is ever minted for a
revoked session — whether it was revoked by logout or by refresh-token reuse detection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import jwt
import pytest
import redis.asyncio as aioredis

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.config import CommonSettings
from services.common.errors import Unauthorized
from services.common.kv import RedisKeyValueStore
from services.common.security import DirectoryKeySet, Revocations, TokenVerifier
from tests.auth.fake_providers import FakeProviders
from tests.auth.test_tokens import cookie_value, login, post, refresh
from tests.support.clients import app_client
from tests.support.instances import private_redis

pytestmark = [pytest.mark.real_only, pytest.mark.slow]

ACCESS_TTL = 3
LEEWAY = 1


@pytest.fixture(scope="module")
def private_redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
def common(migrated: CommonSettings, private_redis_url: str) -> CommonSettings:
    return migrated.model_copy(update={"redis_url": private_redis_url, "jwt_leeway_seconds": LEEWAY})


@pytest.fixture
async def client(
    common: CommonSettings, auth_settings_factory: Callable[..., AuthSettings]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = auth_settings_factory(access_ttl_seconds=ACCESS_TTL, refresh_grace_seconds=1)
    async with app_client(create_app(common=common, settings=settings)) as auth:
        yield auth


@pytest.fixture
async def flush(private_redis_url: str) -> AsyncIterator[Callable[[], object]]:
    redis = aioredis.Redis.from_url(private_redis_url)
    yield redis.flushall
    await redis.aclose()


@pytest.fixture
async def replica_verifier(common: CommonSettings) -> AsyncIterator[TokenVerifier]:
    """The verifier of a service replica that starts after the flush (it never saw the revocation)."""
    kv = RedisKeyValueStore(str(common.redis_url), common.redis_key_prefix)
    yield TokenVerifier(
        DirectoryKeySet(common.data_dir / "keys"),
        Revocations(kv),
        issuer=common.issuer,
        audience=common.jwt_audience,
        leeway=LEEWAY,
    )
    await kv.close()


async def refused_once_expired(verifier: TokenVerifier, access: str) -> None:
    expires = int(jwt.decode(access, options={"verify_signature": False})["exp"])
    await asyncio.sleep(max(0.0, expires + LEEWAY + 1 - time.time()))
    with pytest.raises(Unauthorized) as refused:
        await verifier.verify_access(access)
    assert refused.value.code == "TOKEN_EXPIRED"


async def test_a_flush_does_not_bring_a_logged_out_session_back(
    client: httpx.AsyncClient,
    fake_providers: tuple[FakeProviders, str],
    flush: Callable[[], object],
    replica_verifier: TokenVerifier,
) -> None:
    access, refresh_token = await login(client, fake_providers[0])
    assert (await post(client, "/api/v1/auth/logout", s_access=access, s_refresh=refresh_token)).status_code == 200
    with pytest.raises(Unauthorized):
        await replica_verifier.verify_access(access)  # revoked everywhere while Redis holds the keys

    await flush()  # revocation keys, grace pairs, OAuth states: gone

    again = await refresh(client, refresh_token)
    assert again.status_code == 401
    assert again.json()["code"] == "REFRESH_TOKEN_REVOKED"
    await refused_once_expired(replica_verifier, access)  # the bounded cost: at most the access lifetime
    assert (await refresh(client, refresh_token)).status_code == 401


async def test_a_flush_does_not_undo_reuse_detection(
    client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str], flush: Callable[[], object]
) -> None:
    _, first = await login(client, fake_providers[0])
    second = cookie_value(await refresh(client, first), "s_refresh")
    await asyncio.sleep(1.2)  # past the grace window: presenting `first` again is theft
    stolen = await refresh(client, first)
    assert stolen.json()["code"] == "REFRESH_TOKEN_REVOKED"

    await flush()

    for token in (second, first):
        response = await refresh(client, token)
        assert response.status_code == 401
        assert response.json()["code"] == "REFRESH_TOKEN_REVOKED"


async def test_login_and_refresh_work_after_a_flush(
    client: httpx.AsyncClient, fake_providers: tuple[FakeProviders, str], flush: Callable[[], object]
) -> None:
    _, before = await login(client, fake_providers[0])
    await flush()
    rotated = await refresh(client, before)  # the session row is the truth; Redis held nothing it needs
    assert rotated.status_code == 200
    _, after = await login(client, fake_providers[0])  # a fresh OAuth state works
    assert (await refresh(client, after)).status_code == 200
