"""The cookies this backend sets: the two auth cookies exactly as docs/api.md (conventions:
authentication) spells them, and the short-lived login cookie that binds an OAuth flow to the
browser that started it."""

from __future__ import annotations

from starlette.responses import Response

from services.common.security import ACCESS_COOKIE, REFRESH_COOKIE

# Holds the nonce whose hash the login state stores; sent back only to the auth routes. Host-only
# (never ``AUTH_COOKIE_DOMAIN``): the callback is served by the API host itself.
LOGIN_COOKIE = "s_oauth"
LOGIN_COOKIE_PATH = "/api/v1/auth"


def _cookie(name: str, value: str, max_age: int, domain: str | None, path: str = "/") -> str:
    parts = [f"{name}={value}", "HttpOnly", "Secure", "SameSite=Lax", f"Path={path}", f"Max-Age={max_age}"]
    if domain:
        parts.append(f"Domain={domain}")
    return "; ".join(parts)


def set_cookie(response: Response, name: str, value: str, max_age: int, domain: str | None) -> None:
    response.headers.append("set-cookie", _cookie(name, value, max(1, int(max_age)), domain))


def clear_auth_cookies(response: Response, domain: str | None) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.headers.append("set-cookie", _cookie(name, "", 0, domain))


def set_login_cookie(response: Response, nonce: str, max_age: int) -> None:
    # SameSite=Lax still travels with the provider's top-level redirect (a GET navigation) to the
    # callback, and never with a cross-site subrequest.
    response.headers.append("set-cookie", _cookie(LOGIN_COOKIE, nonce, max(1, max_age), None, LOGIN_COOKIE_PATH))


def clear_login_cookie(response: Response) -> None:
    response.headers.append("set-cookie", _cookie(LOGIN_COOKIE, "", 0, None, LOGIN_COOKIE_PATH))
