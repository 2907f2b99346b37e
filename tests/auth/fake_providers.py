"""Local stand-ins for Kakao, Google and Naver: token and profile endpoints speaking their JSON."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class FakeProviders:
    codes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # code -> (provider, profile)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    fail_token: bool = False

    def issue_code(self, provider: str, profile: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(12)
        self.codes[code] = (provider, profile)
        return code

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{provider}/token", self._token, methods=["POST"]),
                Route("/kakao/me", self._kakao_me),
                Route("/google/userinfo", self._google_me),
                Route("/naver/me", self._naver_me),
            ]
        )

    async def _token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        provider = request.path_params["provider"]
        self.token_requests.append({"provider": provider, **{k: str(v) for k, v in form.items()}})
        issued = self.codes.pop(str(form.get("code")), None)
        if self.fail_token or issued is None or issued[0] != provider:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = issued[1]
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def _profile(self, request: Request) -> dict[str, Any] | None:
        auth = request.headers.get("authorization", "")
        return self.tokens.get(auth.removeprefix("Bearer "))

    async def _kakao_me(self, request: Request) -> JSONResponse:
        p = self._profile(request)
        if p is None:
            return JSONResponse({"msg": "this access token does not exist", "code": -401}, status_code=401)
        return JSONResponse(
            {
                "id": int(p["id"]),
                "connected_at": "2026-01-01T00:00:00Z",
                "properties": {"nickname": p.get("nickname")},
                "kakao_account": {
                    "profile": {"nickname": p.get("nickname"), "profile_image_url": p.get("image")},
                    "email": p.get("email"),
                },
            }
        )

    async def _google_me(self, request: Request) -> JSONResponse:
        p = self._profile(request)
        if p is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(
            {"sub": p["id"], "name": p.get("nickname"), "given_name": p.get("nickname"), "email": p.get("email")}
            | {"picture": p.get("image"), "email_verified": True}
        )

    async def _naver_me(self, request: Request) -> JSONResponse:
        p = self._profile(request)
        if p is None:
            return JSONResponse({"resultcode": "024", "message": "Authentication failed"}, status_code=401)
        return JSONResponse(
            {
                "resultcode": "00",
                "message": "success",
                "response": {"id": p["id"], "nickname": p.get("nickname"), "email": p.get("email")}
                | {"profile_image": p.get("image")},
            }
        )
