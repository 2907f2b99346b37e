"""The two auth cookies, written exactly as docs/api.md, conventions: authentication spells them."""

from __future__ import annotations

from starlette.responses import Response

from services.common.security import ACCESS_COOKIE, REFRESH_COOKIE


def _cookie(name: str, value: str, max_age: int, domain: str | None) -> str:
    parts = [f"{name}={value}", "HttpOnly", "Secure", "SameSite=Lax", "Path=/", f"Max-Age={max_age}"]
    if domain:
        parts.append(f"Domain={domain}")
    return "; ".join(parts)


def set_cookie(response: Response, name: str, value: str, max_age: int, domain: str | None) -> None:
    response.headers.append("set-cookie", _cookie(name, value, max(1, int(max_age)), domain))


def clear_auth_cookies(response: Response, domain: str | None) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.headers.append("set-cookie", _cookie(name, "", 0, domain))
