"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers streams and costs per request).

``CORSMiddleware`` implements docs/api.md, conventions: CORS exactly (204 preflight on any path, headers on every
answer including errors and SSE). ``RequestContextMiddleware`` gives each request an id, logs it,
records metrics by route template and turns an unhandled exception into a 500 ``INTERNAL_ERROR``
*inside* the CORS layer, so even a crash reaches the browser with CORS headers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.logging import get_logger
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Content-Type, X-Frontend-Origin, X-Idempotency-Key, Last-Event-ID, Authorization"
_UNTRACKED = {"/health", "/ready", "/metrics"}

log = get_logger("eco2.http")


class CORSMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            await self._preflight(origin, send)
            return
        if origin is None or origin not in self.allowed:
            await self.app(scope, receive, send)
            return
        extra = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", b"Retry-After"),
            (b"vary", b"Origin"),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str | None, send: Send) -> None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if origin is not None and origin in self.allowed:
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, service: str, templates: Mapping[int, str] | None = None) -> None:
        self.app = app
        self.service = service
        # Full route template by route object: a router mounted under a prefix matches with its
        # own, relative route (``/{job_id}/events``), while the metrics name the whole path.
        self.templates = templates or {}
        # Metric children by (method, route, status): ``labels()`` takes a lock and builds a key on
        # every call, a measurable share of a fast request; the set of keys is small and bounded.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, method: str, template: str, status: int, elapsed: float) -> None:
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                HTTP_REQUESTS.labels(self.service, method, template, str(status)),
                HTTP_LATENCY.labels(self.service, method, template),
            )
        children[0].inc()
        children[1].observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id, service=self.service)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled_error", path=scope["path"])
            if response_started:
                raise
            status = 500
            await _send_json(send_wrapper, 500, b'{"detail":"internal server error","code":"INTERNAL_ERROR"}')
        finally:
            path = scope["path"]
            if path not in _UNTRACKED:
                route = scope.get("route")
                template = self.templates.get(id(route)) or getattr(route, "path", None) or "unmatched"
                elapsed = time.perf_counter() - started
                self._observe(scope["method"], template, status, elapsed)
                if status >= 500:
                    log.warning("request", method=scope["method"], path=path, status=status, ms=elapsed * 1000)
            structlog.contextvars.unbind_contextvars("request_id", "service")


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def header(scope: Scope, name: bytes) -> str | None:
    return _header(scope, name)
