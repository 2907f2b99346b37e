"""Request and response bodies of the auth endpoints (the envelope is auth's alone, docs/api.md, auth)."""

from __future__ import annotations

from pydantic import BaseModel

from services.common.schemas import UtcDateTime


class LoginStartData(BaseModel):
    provider: str
    state: str
    authorization_url: str
    expires_at: UtcDateTime


class LoginStartResponse(BaseModel):
    success: bool = True
    data: LoginStartData


class RefreshData(BaseModel):
    access_expires_at: UtcDateTime
    refresh_expires_at: UtcDateTime


class RefreshResponse(BaseModel):
    success: bool = True
    data: RefreshData


class LogoutData(BaseModel):
    message: str = "logged out"


class LogoutResponse(BaseModel):
    success: bool = True
    data: LogoutData = LogoutData()


class JWK(BaseModel):
    kty: str
    use: str
    alg: str
    kid: str
    n: str
    e: str


class JWKS(BaseModel):
    keys: list[JWK]
