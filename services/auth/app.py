"""The auth service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.auth.config import AuthSettings
from services.auth.keys import KeyRing
from services.auth.providers import configured_providers
from services.auth.router import router
from services.auth.service import AuthService
from services.auth.tokens import TokenIssuer
from services.common.app import ServiceApp
from services.common.config import Environment
from services.common.ratelimit import Throttle
from services.common.runtime import ServiceRuntime
from services.common.security import StaticKeySet, TokenVerifier
from services.registry import SERVICES

SERVICE = SERVICES["auth"]


@asynccontextmanager
async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: AuthSettings) -> AsyncIterator[None]:
    common = runtime.common
    keys_dir = settings.keys_dir or common.data_dir / "keys"
    keyring = KeyRing.load(keys_dir, settings.active_key_id, generate=common.environment is not Environment.PRODUCTION)
    http = httpx.AsyncClient(timeout=settings.provider_timeout_seconds)
    runtime.on_close(http.aclose)
    app.state.keyring = keyring
    app.state.throttles = {
        kind: Throttle(
            common,
            f"auth:{kind}",
            getattr(settings, f"{kind}_per_address"),
            getattr(settings, f"{kind}_global"),
            settings.throttle_window_seconds,
        )
        for kind in ("login", "callback", "refresh")
    }
    for throttle in app.state.throttles.values():
        runtime.on_close(throttle.close)
    app.state.auth = AuthService(
        settings=settings,
        allowed_origins=frozenset(common.cors_allowed_origins),
        kv=runtime.kv,
        revocations=runtime.revocations,
        issuer=TokenIssuer(
            keyring,
            issuer=common.issuer,
            audience=common.jwt_audience,
            access_ttl=settings.access_ttl_seconds,
            refresh_ttl=settings.refresh_ttl_seconds,
        ),
        # Auth verifies refresh tokens against its own key ring, never a copy of it.
        verifier=TokenVerifier(
            StaticKeySet(keyring.published),
            runtime.revocations,
            issuer=common.issuer,
            audience=common.jwt_audience,
            leeway=common.jwt_leeway_seconds,
        ),
        providers=configured_providers(settings, SERVICE.public_url(common.public_api_base_url)),
        http=http,
    )
    yield


create_app = ServiceApp(
    SERVICE,
    AuthSettings,
    routers=[router],
    lifespan=lifespan,
    description="Social login, sessions and token rotation.",
)
