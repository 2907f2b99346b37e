"""Attack: a superseded refresh token must not open an SSE stream (docs/api.md: authentication ``user/stream``; refresh, reuse, logout).

The stream dependency applies the refresh endpoint's rules: only the session's current refresh token
(or, within the grace window, the one rotated just before it) is accepted; a superseded one presented
later is treated as stolen and revokes the whole session, exactly as ``POST /auth/refresh`` does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
from fastapi import APIRouter

from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.common.app import create_service_app
from services.common.config import CommonSettings
from services.common.deps import StreamUser
from services.common.identity import ServiceEntry
from tests.auth.fake_providers import FakeProviders
from tests.auth.test_tokens import cookie_value, login, refresh
from tests.support.clients import app_client
from tests.support.tokens import issue_tokens

PROBE = ServiceEntry("probe", "/api/v1/probe", "tests.auth.test_stream_refresh:probe", has_migrations=False)
probe = APIRouter()


@probe.get("/events")
async def events(user: StreamUser) -> dict[str, str]:
    return {"user_id": str(user.user_id)}


async def open_stream(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    client.cookies.clear()
    return await client.get("/api/v1/probe/events", headers={"Cookie": f"s_refresh={refresh_token}"})


async def test_superseded_refresh_token_opens_no_stream_and_revokes_the_session(
    migrated: CommonSettings,
    auth_settings_factory: Callable[..., AuthSettings],
    fake_providers: tuple[FakeProviders, str],
) -> None:
    fake, _ = fake_providers
    auth_app = create_app(common=migrated, settings=auth_settings_factory(refresh_grace_seconds=1))
    stream_app = create_service_app(PROBE, common=migrated, routers=[probe])
    async with app_client(auth_app) as auth, app_client(stream_app) as streams:
        _, first = await login(auth, fake)
        assert (await open_stream(streams, first)).status_code == 200  # the current token
        second = cookie_value(await refresh(auth, first), "s_refresh")
        # Inside the grace window the just-rotated token is a concurrent request of the same browser.
        assert (await open_stream(streams, first)).status_code == 200
        assert (await open_stream(streams, second)).status_code == 200
        await asyncio.sleep(1.2)
        stolen = await open_stream(streams, first)
        assert stolen.status_code == 401
        assert stolen.json()["code"] == "TOKEN_REVOKED"
        # Reuse detection: the whole family is dead, for streams and for the refresh endpoint.
        legit = await open_stream(streams, second)
        assert legit.status_code == 401
        assert legit.json()["code"] == "TOKEN_REVOKED"
        refreshed = await refresh(auth, second)
        assert refreshed.status_code == 401
        assert refreshed.json()["code"] == "REFRESH_TOKEN_REVOKED"


async def test_refresh_token_of_an_unknown_session_opens_no_stream(migrated: CommonSettings) -> None:
    # Well signed, never issued by a login of the auth service (no session records it as current).
    pair = issue_tokens(migrated, uuid.uuid4())
    stream_app = create_service_app(PROBE, common=migrated, routers=[probe])
    async with app_client(stream_app) as streams:
        refused = await open_stream(streams, pair.refresh)
    assert refused.status_code == 401
    assert refused.json()["code"] == "TOKEN_INVALID"
    assert pair.refresh_exp > time.time()
