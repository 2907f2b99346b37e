"""Issuing access and refresh JWTs (docs/api.md, auth: tokens)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

import jwt

from services.auth.keys import KeyRing


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    access_jti: str
    refresh_jti: str
    access_exp: int
    refresh_exp: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TokenIssuer:
    def __init__(self, keys: KeyRing, *, issuer: str, audience: str, access_ttl: int, refresh_ttl: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.signing
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})

    def issue(self, user_id: uuid.UUID, sid: uuid.UUID, provider: str, now: int) -> TokenPair:
        # nbf = iat = now: a freshly refreshed token is valid at once everywhere (docs/api.md, client session rule R2).
        common = {"sub": str(user_id), "sid": str(sid), "iat": now, "nbf": now, "iss": self.issuer}
        common |= {"aud": self.audience, "provider": provider}
        access_jti, refresh_jti = str(uuid.uuid4()), str(uuid.uuid4())
        access_exp, refresh_exp = now + self.access_ttl, now + self.refresh_ttl
        access = self._sign({**common, "jti": access_jti, "type": "access", "exp": access_exp})
        refresh = self._sign({**common, "jti": refresh_jti, "type": "refresh", "exp": refresh_exp})
        return TokenPair(access, refresh, access_jti, refresh_jti, access_exp, refresh_exp)
