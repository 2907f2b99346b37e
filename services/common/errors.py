"""One exception hierarchy for domain errors, turned into ``{"detail", "code"}`` by one handler.

Services raise these from their service layer (which knows nothing of HTTP); the status lives on the
class so routers stay thin.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        detail = "Not Found"
    return error_response(exc.status_code, detail, code, dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # 422 keeps FastAPI's own shape (docs/api.md, conventions: errors): the default handler stays in place for
    # RequestValidationError, nothing to register.
    _ = RequestValidationError


def responses(*errors: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of a route's error answers: ``responses=responses((404, "JOB_NOT_FOUND"))``."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status, code in errors:
        entry = documented.setdefault(status, {"model": ErrorBody, "description": ""})
        entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return documented
