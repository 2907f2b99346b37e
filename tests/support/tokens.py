"""Mint tokens the way the auth service does, for tests of other services.

The key lands in ``<data_dir>/keys``, where every service's embedded key set (and the auth service
in the same test session) looks for it.
"""

from __future__ import annotations

import time
import uuid

import jwt

from services.auth.keys import KeyRing
from services.auth.tokens import TokenIssuer, TokenPair
from services.common.config import CommonSettings
from services.common.kv import create_kv
from services.common.security import Revocations


def issuer(common: CommonSettings, *, access_ttl: int = 3600, refresh_ttl: int = 14 * 24 * 3600) -> TokenIssuer:
    keyring = KeyRing.load(common.data_dir / "keys", None, generate=True)
    return TokenIssuer(
        keyring, issuer=common.issuer, audience=common.jwt_audience, access_ttl=access_ttl, refresh_ttl=refresh_ttl
    )


def issue_tokens(
    common: CommonSettings, user_id: uuid.UUID | None = None, *, provider: str = "dev", sid: uuid.UUID | None = None
) -> TokenPair:
    return issuer(common).issue(user_id or uuid.uuid4(), sid or uuid.uuid4(), provider, int(time.time()))


async def register_session(common: CommonSettings, pair: TokenPair) -> None:
    """Record ``pair``'s refresh token as its session's current one, as the auth service does at login."""
    claims = jwt.decode(pair.refresh, options={"verify_signature": False})
    kv = create_kv(common.redis_url, common.redis_key_prefix)
    try:
        await Revocations(kv).record_refresh(str(claims["sid"]), pair.refresh_jti, pair.refresh_exp)
    finally:
        if common.redis_url:
            await kv.close()


def auth_headers(common: CommonSettings, user_id: uuid.UUID | None = None) -> dict[str, str]:
    """``Authorization: Bearer`` for a fresh access token of ``user_id`` (a new user when omitted)."""
    return {"Authorization": f"Bearer {issue_tokens(common, user_id).access}"}
