"""The server side of ``bench/users_me.py``: one uvicorn process serving, side by side,

- ``/bench/hello``           a bare FastAPI app (one route, no middleware) — the baseline;
- ``/api/v1/users/me``       the real my service app, exactly as ``eco2 serve my`` builds it;
- ``/bench/naive/users/me``  for comparison, the straightforward version of the same endpoint inside
  the same service app: PyJWT RS256 verify + Redis EXISTS + one SQLAlchemy ORM ``get`` per request.

Configured from the environment like any service (DATABASE_URL, REDIS_URL, ECO2_DATA_DIR, …).
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import Unauthorized
from services.common.security import ACCESS_COOKIE
from services.my.app import create_app
from services.my.models import Profile

bare = FastAPI()


@bare.get("/bench/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


service = create_app()


@service.get("/bench/naive/users/me", include_in_schema=False)
async def naive_me(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    token = request.cookies.get(ACCESS_COOKIE) or ""
    header = jwt.get_unverified_header(token)
    key = await runtime.verifier.keys.get(header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=runtime.common.jwt_audience, issuer=runtime.common.issuer
    )
    keys = (f"revoked:jti:{claims['jti']}", f"revoked:sid:{claims['sid']}", f"revoked:user:{claims['sub']}")
    if await runtime.kv.count_existing(*keys):
        raise Unauthorized("token revoked", "TOKEN_REVOKED")
    async with runtime.db.session() as session:
        profile = await session.get(Profile, uuid.UUID(claims["sub"]))
    assert profile is not None
    name = profile.nickname or "사용자"
    return JSONResponse(
        {
            "id": str(profile.user_id),
            "username": name,
            "display_name": name,
            "nickname": profile.nickname,
            "phone_number": profile.phone_number,
            "provider": claims.get("provider"),
            "profile_image_url": profile.profile_image_url,
            "last_login_at": profile.last_login_at.isoformat() if profile.last_login_at else None,
            "created_at": profile.created_at.isoformat(),
        }
    )


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    target: ASGIApp = bare if scope["type"] == "http" and scope["path"] == "/bench/hello" else service
    await target(scope, receive, send)
