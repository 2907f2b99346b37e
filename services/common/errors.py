"""One exception hierarchy for domain errors, turned into ``{"detail", "code"}`` by one handler.

Services raise these from their service layer (which knows nothing of HTTP); the status lives on the
class so routers stay thin.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as StarletteRequest
from starlette.routing import Match

from services.common.schemas import ErrorBody


class AppError(Exception):
    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "BAD_REQUEST"

    def __init__(self, detail: str, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.headers = headers


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    """Only for "the access token is missing, malformed, expired or revoked" (docs/api.md, client session rule R1)."""

    status_code = 401
    default_code = "TOKEN_INVALID"


class NotFound(AppError):
    status_code = 404
    default_code = "NOT_FOUND"


class Conflict(AppError):
    status_code = 409
    default_code = "CONFLICT"


class Unprocessable(AppError):
    status_code = 422
    default_code = "UNPROCESSABLE"


class RateLimited(AppError):
    status_code = 429
    default_code = "RATE_LIMITED"

    def __init__(self, retry_after: int, detail: str = "rate limit exceeded") -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class UpstreamError(AppError):
    status_code = 502
    default_code = "UPSTREAM_ERROR"


class ServiceUnavailable(AppError):
    status_code = 503
    default_code = "SERVICE_UNAVAILABLE"


def error_response(status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "BAD_REQUEST", 401: "TOKEN_MISSING"}


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.detail, exc.code, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        detail = "Not Found"
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return error_response(exc.status_code, detail, code, headers)


def allowed_methods(request: Request) -> str:
    """Every method of the resource, not only those of the first route that matched it: FastAPI
    keeps one route per method, and Starlette's 405 names the first one's alone (RFC 9110 §15.5.6)."""
    matching = [
        (route.path_format, route.methods or set())
        for route in iter_route_contexts(request.app.router.routes)  # included routers' routes too
        if route.matches(request.scope)[0] is not Match.NONE
    ]
    # A literal path is its own resource: /auth/refresh is not also /auth/{provider}.
    literal = [methods for path, methods in matching if path == request.scope["path"]]
    return ", ".join(sorted(set().union(*(literal or [methods for _, methods in matching]))))


async def _strict_json(self: StarletteRequest) -> Any:
    """Request bodies are parsed as RFC 8259 JSON: ``NaN``/``Infinity``, numbers that overflow to
    infinity and lone surrogates (``"\\ud800"``) are not JSON. Python's ``json`` accepts them, and
    they then broke the 422 echo and database writes (500s). orjson refuses them with a
    ``JSONDecodeError``, which FastAPI answers as its usual 422 ``json_invalid``."""
    if not hasattr(self, "_json"):
        body = await self.body()
        try:
            self._json = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise json.JSONDecodeError(exc.msg, exc.doc if isinstance(exc.doc, str) else "", exc.pos) from None
    return self._json


def _printable(value: Any) -> Any:
    """What JSON can carry of an echoed input: non-finite floats as text, lone surrogates replaced."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 shape (docs/api.md, conventions: errors), rendered even when the echoed
    input is not JSON-able."""
    assert isinstance(exc, RequestValidationError)
    detail = jsonable_encoder(exc.errors())
    try:
        return JSONResponse({"detail": detail}, status_code=422)
    except (ValueError, UnicodeEncodeError):
        return JSONResponse({"detail": _printable(detail)}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    StarletteRequest.json = _strict_json  # type: ignore[method-assign,assignment]
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def responses(*errors: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of a route's error answers: ``responses=responses((404, "JOB_NOT_FOUND"))``."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status, code in errors:
        entry = documented.setdefault(status, {"model": ErrorBody, "description": ""})
        entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return documented


def redirect_doc(description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of a 302 (no body, a ``Location`` header)."""
    location = {"description": "where the browser goes next", "schema": {"type": "string"}}
    return {302: {"description": description, "headers": {"Location": location}}}


def html_doc(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of an HTML answer (the dev login pages)."""
    return {status: {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}}


# asyncpg's own errors for a connection that broke mid-operation (no SQLSTATE: client side).
_ASYNCPG_CONNECTION_STATE = frozenset({"InternalClientError", "ConnectionDoesNotExistError", "ConnectionFailureError"})


def dependency_unavailable(exc: BaseException) -> bool:
    """Whether an unhandled exception means "a store is unreachable right now" (PostgreSQL or Redis
    down, restarting, refusing or out of connections): answered 503 ``SERVICE_UNAVAILABLE``
    (docs/api.md, conventions: errors), not 500 — the request may be retried, nothing is wrong with
    it or with this code."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ConnectionError | TimeoutError):
        return True
    # PostgreSQL refusing work while it shuts down or starts up arrives as a plain DBAPIError:
    # SQLSTATE class 08 (connection exception), 57P0x (admin/crash shutdown, cannot connect now) or
    # 53300 (too many connections).
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = str(getattr(current, "sqlstate", "") or getattr(current, "pgcode", "") or "")
        if sqlstate.startswith(("08", "57P", "53300")) or type(current).__name__ in _ASYNCPG_CONNECTION_STATE:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False
