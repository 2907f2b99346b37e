"""Kernel pieces behind the fast ``/users/me``: remembered token verification, kv pub/sub, the
invalidated profile cache."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from services.common.cache import InvalidatedCache
from services.common.config import CommonSettings
from services.common.errors import Unauthorized
from services.common.kv import KeyValueStore, create_kv
from services.common.security import DirectoryKeySet, Revocations, TokenVerifier
from tests.conftest import ClockControl
from tests.support.events import eventually
from tests.support.tokens import issue_tokens, issuer

CHANNEL = "test:invalidations"


@pytest.fixture
async def kv(common_settings: CommonSettings) -> AsyncIterator[KeyValueStore]:
    store = create_kv(common_settings.redis_url, common_settings.redis_key_prefix)
    yield store
    await store.close()


class CountingKeySet(DirectoryKeySet):
    lookups = 0

    async def get(self, kid: str) -> object:  # type: ignore[override]
        CountingKeySet.lookups += 1
        return await super().get(kid)


def verifier(common: CommonSettings, kv: KeyValueStore, recheck: float = 0.5) -> TokenVerifier:
    return TokenVerifier(
        CountingKeySet(common.data_dir / "keys"),
        Revocations(kv),
        issuer=common.issuer,
        audience=common.jwt_audience,
        recheck_seconds=recheck,
    )


async def test_a_token_is_verified_once_then_remembered(common_settings: CommonSettings, kv: KeyValueStore) -> None:
    tokens = issue_tokens(common_settings)
    check = verifier(common_settings, kv)
    before = CountingKeySet.lookups
    claims = [await check.verify_access(tokens.access) for _ in range(50)]
    assert CountingKeySet.lookups - before == 1
    assert len({c.jti for c in claims}) == 1
    with pytest.raises(Unauthorized) as refused:
        await check.verify_access(tokens.refresh)  # a refresh token is never accepted as access
    assert refused.value.code == "TOKEN_INVALID"
    tampered = tokens.access[:-4] + ("AAAA" if not tokens.access.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthorized):
        await check.verify_access(tampered)


async def test_a_remembered_token_still_expires(
    common_settings: CommonSettings, kv: KeyValueStore, clock: ClockControl
) -> None:
    # JWT times are whole seconds: a 1 s lifetime can be over a few milliseconds after issue, so the
    # token lives 10 s and the clock jumps past it.
    short = issuer(common_settings, access_ttl=10).issue(uuid.uuid4(), uuid.uuid4(), "dev", int(time.time()))
    check = verifier(common_settings, kv)
    check.leeway = 0
    await check.verify_access(short.access)
    clock.advance(11.1)
    with pytest.raises(Unauthorized) as refused:
        await check.verify_access(short.access)
    assert refused.value.code == "TOKEN_EXPIRED"


async def test_revocations_reach_remembered_tokens(common_settings: CommonSettings, kv: KeyValueStore) -> None:
    check = verifier(common_settings, kv, recheck=0.3)
    elsewhere, here = issue_tokens(common_settings), issue_tokens(common_settings)
    await check.verify_access(elsewhere.access)
    await check.verify_access(here.access)
    # Written straight into the store, as another process would: seen after the recheck interval.
    await kv.set(f"revoked:jti:{elsewhere.access_jti}", "1", ttl=60)

    async def refused() -> bool:
        try:
            await check.verify_access(elsewhere.access)
        except Unauthorized as exc:
            return exc.code == "TOKEN_REVOKED"
        return False

    # Bounded staleness (recheck 0.3 s); the bound leaves room for a loaded CI machine.
    await eventually(refused, timeout=5.0, interval=0.01)
    # Revoked through this process's Revocations: refused on the very next call.
    await Revocations(kv).revoke_user(check_sub(here.access), 60)
    with pytest.raises(Unauthorized):
        await check.verify_access(here.access)


def check_sub(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


async def test_cache_size_is_bounded(common_settings: CommonSettings, kv: KeyValueStore) -> None:
    check = verifier(common_settings, kv)
    check.cache_size = 8
    for _ in range(20):
        await check.verify_access(issue_tokens(common_settings).access)
    assert len(check._verified) <= 8


async def test_pubsub_invalidates_other_processes(common_settings: CommonSettings, kv: KeyValueStore) -> None:
    other = create_kv(common_settings.redis_url, common_settings.redis_key_prefix)  # another process's client
    mine: InvalidatedCache[str] = InvalidatedCache(kv, channel=CHANNEL, ttl=60, max_size=100)
    theirs: InvalidatedCache[str] = InvalidatedCache(other, channel=CHANNEL, ttl=60, max_size=100)
    mine.start()
    theirs.start()
    try:
        await asyncio.sleep(0.3)  # listeners attached (and their attach-time flush done)
        for cache in (mine, theirs):
            cache.put("u1", "old", cache.generation)
            cache.put("u2", "keep", cache.generation)
        await mine.invalidate("u1")
        assert mine.get("u1") is None  # the writer: at once

        async def dropped() -> bool:
            return theirs.get("u1") is None

        await eventually(dropped, timeout=2)
        assert theirs.get("u2") == "keep"
    finally:
        mine.stop()
        theirs.stop()
        await other.close()


async def test_a_load_older_than_an_invalidation_is_not_cached(kv: KeyValueStore) -> None:
    cache: InvalidatedCache[str] = InvalidatedCache(kv, channel=CHANNEL, ttl=60, max_size=100)
    seen = cache.generation  # a slow read starts ...
    await cache.invalidate("u1")  # ... a write commits and invalidates meanwhile ...
    cache.put("u1", "stale", seen)  # ... the slow read must not put its old row back
    assert cache.get("u1") is None
    cache.put("u1", "fresh", cache.generation)
    assert cache.get("u1") == "fresh"
    expiring: InvalidatedCache[str] = InvalidatedCache(kv, channel=CHANNEL, ttl=0.05, max_size=100)
    expiring.put("u1", "x", expiring.generation)
    await asyncio.sleep(0.1)
    assert expiring.get("u1") is None
