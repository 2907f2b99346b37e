"""FastAPI dependencies shared by the routers: the request's DB session and the current user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Unauthorized
from services.common.runtime import ServiceRuntime
from services.common.security import ACCESS_COOKIE, REFRESH_COOKIE, TokenClaims


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


# Dependencies that only read app state are ``async def``: FastAPI runs a plain ``def`` dependency in
# its thread pool, a thread hand-off per request for one attribute read (seen in the scan profile,
# docs/benchmarks.md).
async def runtime_dependency(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db = get_runtime(request).db
    assert db is not None, "this service has no database"
    async with db.session() as session:
        yield session


# Declared (not read from ``request.headers``) so the route's CORS preflight allows it
# (``services.common.cors`` reads declared headers); kept out of the OpenAPI documents.
AuthorizationHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]


def bearer_or_cookie(request: Request, authorization: str | None = None) -> str | None:
    """The access token: ``Authorization: Bearer`` wins over the ``s_access`` cookie (docs/api.md,
    conventions: authentication)."""
    authorization = authorization or request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.cookies.get(ACCESS_COOKIE) or None


async def current_user(request: Request, authorization: AuthorizationHeader = None) -> TokenClaims:
    token = bearer_or_cookie(request, authorization)
    if not token:
        raise Unauthorized("access token missing", "TOKEN_MISSING")
    return await get_runtime(request).verifier.verify_access(token)


async def current_stream_user(request: Request, authorization: AuthorizationHeader = None) -> TokenClaims:
    """``user/stream``: an EventSource cannot refresh, so the session's current refresh cookie also counts."""
    try:
        return await current_user(request, authorization)
    except Unauthorized as exc:
        if exc.code == "TOKEN_REVOKED":
            raise
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh:
            raise
        runtime = get_runtime(request)
        claims = await runtime.verifier.decode(refresh, "refresh")
        # The refresh endpoint's rules, reuse detection included (docs/api.md, auth: refresh, reuse, logout): a superseded
        # refresh token opens no stream.
        await runtime.revocations.check_refresh(claims)
        return claims


# scope="function": the session commits when the endpoint returns, before the response is sent,
# so a client that reads right after a write sees it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
CurrentUser = Annotated[TokenClaims, Depends(current_user)]
StreamUser = Annotated[TokenClaims, Depends(current_stream_user)]
RuntimeDep = Annotated[ServiceRuntime, Depends(runtime_dependency)]
