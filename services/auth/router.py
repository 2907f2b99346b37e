"""HTTP layer of the auth service (docs/api.md, auth). Rules live in ``service.py``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.auth.devlogin import error_page, login_form
from services.auth.schemas import (
    JWKS,
    LoginStartData,
    LoginStartResponse,
    LogoutResponse,
    RefreshData,
    RefreshResponse,
)
from services.auth.service import AuthService, DevLoginError, LoginFailed, LoginStart
from services.auth.tokens import TokenPair
from services.common.cookies import (
    LOGIN_COOKIE,
    clear_auth_cookies,
    clear_login_cookie,
    set_cookie,
    set_login_cookie,
)
from services.common.deps import AuthorizationHeader, RuntimeDep, SessionDep, bearer_or_cookie
from services.common.errors import (
    NotFound,
    RateLimited,
    Unauthorized,
    error_response,
    html_doc,
    redirect_doc,
    responses,
)
from services.common.logging import get_logger
from services.common.pages import html_page
from services.common.security import ACCESS_COOKIE, REFRESH_COOKIE

log = get_logger("eco2.auth")
router = APIRouter(tags=["auth"])


async def get_service(request: Request) -> AuthService:
    return request.app.state.auth


AuthDep = Annotated[AuthService, Depends(get_service)]


def _set_token_cookies(response: Response, tokens: TokenPair, domain: str | None) -> None:
    now = int(time.time())
    set_cookie(response, ACCESS_COOKIE, tokens.access, tokens.access_exp - now, domain)
    set_cookie(response, REFRESH_COOKIE, tokens.refresh, tokens.refresh_exp - now, domain)


def _require_dev(service: AuthService) -> None:
    if "dev" not in service.providers:
        raise NotFound("Not Found")


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def throttled(kind: str) -> Any:
    """Dependency: refuse with 429 + Retry-After past the ``kind`` throttle (login, refresh)."""

    async def check(request: Request) -> None:
        await request.app.state.throttles[kind].check(_client_host(request))

    return Depends(check)


def _started(response: Response, start: LoginStart, service: AuthService) -> None:
    set_login_cookie(response, start.browser_nonce, service.settings.state_ttl_seconds)


def _form_targets(service: AuthService) -> list[str]:
    """Where the dev login form's submission may lead: this page, the callbacks, then the client
    (browsers apply ``form-action`` to the redirects that follow a form post)."""
    callbacks = {_origin(p.default_redirect_uri) for p in service.providers.values() if p.dev_backed}
    return ["'self'", *sorted(callbacks), *sorted(service.allowed_origins)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _dev_page(html: str, service: AuthService, status_code: int = 200) -> Response:
    return html_page(html, status_code, form_action=_form_targets(service))


@router.get("/.well-known/jwks.json", response_model=JWKS)
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.post(
    "/refresh",
    response_model=RefreshResponse,
    responses=responses((401, "REFRESH_TOKEN_*"), (429, "RATE_LIMITED"), (503, "")),
    dependencies=[throttled("refresh")],
)
async def refresh(request: Request, session: SessionDep, service: AuthDep) -> Response:
    try:
        tokens = await service.refresh(session, request.cookies.get(REFRESH_COOKIE))
    except Unauthorized as exc:
        response = error_response(401, exc.detail, exc.code)
        clear_auth_cookies(response, service.settings.cookie_domain)
        return response
    body = RefreshResponse(
        data=RefreshData(
            access_expires_at=_dt(tokens.access_exp),
            refresh_expires_at=_dt(tokens.refresh_exp),
        )
    )
    response = JSONResponse(body.model_dump(mode="json"))
    _set_token_cookies(response, tokens, service.settings.cookie_domain)
    return response


@router.post("/logout", response_model=LogoutResponse)
async def logout(
    request: Request, runtime: RuntimeDep, service: AuthDep, authorization: AuthorizationHeader = None
) -> Response:
    # No auth dependency at all (docs/api.md, client session rule R3): whatever is presented is revoked.
    assert runtime.db is not None
    access = bearer_or_cookie(request, authorization)
    await service.logout(runtime.db, access, request.cookies.get(REFRESH_COOKIE))
    response = JSONResponse(LogoutResponse().model_dump(mode="json"))
    clear_auth_cookies(response, service.settings.cookie_domain)
    return response


@router.get(
    "/dev/start",
    status_code=302,
    response_class=RedirectResponse,
    responses={**redirect_doc("to the dev login page"), **responses((404, "NOT_FOUND"), (429, "RATE_LIMITED"))},
    dependencies=[throttled("login")],
)
async def dev_start(service: AuthDep, frontend_origin: str | None = None) -> Response:
    _require_dev(service)
    start = await service.start_login("dev", None, frontend_origin, None)
    response = RedirectResponse(start.authorization_url, status_code=302)
    _started(response, start, service)
    return response


@router.get(
    "/dev/authorize",
    # Not ``response_class=HTMLResponse``: FastAPI would then document the JSON 404 as HTML too.
    responses={
        **html_doc(200, "the login form"),
        **html_doc(400, "unknown or expired state"),
        **responses((404, "NOT_FOUND")),
    },
)
async def dev_authorize_page(
    service: AuthDep,
    state: str = "",
    redirect_uri: str = "",
    code_challenge: str = "",
    code_challenge_method: str = "",
) -> Response:
    _require_dev(service)
    try:
        record = await service.dev_authorize(state, redirect_uri, code_challenge, code_challenge_method)
    except DevLoginError as exc:
        return _dev_page(error_page(str(exc)), service, 400)
    return _dev_page(login_form(state, record.provider), service)


@router.post(
    "/dev/authorize",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        **redirect_doc("to the callback with a one-time code"),
        **html_doc(400, "invalid input or state"),
        **responses((404, "NOT_FOUND")),
    },
)
async def dev_authorize_submit(
    service: AuthDep,
    state: Annotated[str, Form()] = "",
    login: Annotated[str, Form()] = "",
    nickname: Annotated[str | None, Form()] = None,
) -> Response:
    _require_dev(service)
    try:
        location = await service.dev_submit(state, login, nickname)
    except DevLoginError as exc:
        return _dev_page(error_page(str(exc)), service, 400)
    return RedirectResponse(location, status_code=302)


@router.get(
    "/{provider}",
    response_model=LoginStartResponse,
    responses=responses((400, "UNSUPPORTED_PROVIDER"), (400, "INVALID_REDIRECT_URI"), (429, "RATE_LIMITED")),
    dependencies=[throttled("login")],
)
async def start_login(
    provider: str,
    service: AuthDep,
    response: Response,
    redirect_uri: str | None = None,
    frontend_origin: str | None = None,
    x_frontend_origin: Annotated[str | None, Header()] = None,
) -> LoginStartResponse:
    start = await service.start_login(provider, redirect_uri, frontend_origin, x_frontend_origin)
    _started(response, start, service)
    return LoginStartResponse(
        data=LoginStartData(
            provider=start.provider,
            state=start.state,
            authorization_url=start.authorization_url,
            expires_at=start.expires_at,
        )
    )


@router.get(
    "/{provider}/callback",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        **redirect_doc("back to the client: #/home, or #/login?error=oauth_failed"),
        **responses((404, "NOT_FOUND")),
    },
)
async def callback(
    provider: str,
    request: Request,
    session: SessionDep,
    service: AuthDep,
    code: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    if provider == "dev":
        _require_dev(service)
    try:
        await request.app.state.throttles["callback"].check(_client_host(request))
    except RateLimited as exc:
        # A callback is a browser navigation: the documented redirect, never a 4xx page (docs/api.md, auth).
        log.warning("login_failed", provider=provider, reason="callback throttled")
        target = f"{service.settings.frontend_url}/#/login?error=oauth_failed"
        return RedirectResponse(target, status_code=302, headers=exc.headers)
    try:
        origin, tokens = await service.complete_login(
            session,
            provider,
            code=code,
            state=state,
            error=error,
            browser_nonce=request.cookies.get(LOGIN_COOKIE),
            ip=_client_host(request),
            user_agent=request.headers.get("user-agent"),
        )
        # Committed here, inside the try: a failing write must still end in the login-error redirect.
        await session.commit()
    except LoginFailed as exc:
        log.warning("login_failed", provider=provider, reason=exc.reason)
        return RedirectResponse(f"{exc.frontend_origin}/#/login?error=oauth_failed", status_code=302)
    except Exception:
        log.exception("login_failed", provider=provider, reason="internal error")
        await session.rollback()
        return RedirectResponse(f"{service.settings.frontend_url}/#/login?error=oauth_failed", status_code=302)
    response = RedirectResponse(f"{origin}/#/home", status_code=302)
    _set_token_cookies(response, tokens, service.settings.cookie_domain)
    clear_login_cookie(response)
    return response


def _dt(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
