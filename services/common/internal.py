"""Service-to-service calls that the public edge never routes (``/internal/v1/...``).

The caller sends ``X-Internal-Token: <INTERNAL_TOKEN>``; a wrong or missing token is 401
``INTERNAL_AUTH_FAILED``. These routes are left out of the public OpenAPI schema.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from services.common.errors import AppError
from services.common.tracing import inject

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 - a header name, not a secret


class InternalAuthFailed(AppError):
    status_code = 401
    default_code = "INTERNAL_AUTH_FAILED"


async def require_internal(request: Request) -> None:
    expected = request.app.state.runtime.common.internal_token
    sent = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise InternalAuthFailed("internal token missing or wrong")


def internal_headers(token: str) -> dict[str, str]:
    """The internal token, and the current trace context (``traceparent``) when tracing is on."""
    headers = {INTERNAL_TOKEN_HEADER: token}
    inject(headers)
    return headers
