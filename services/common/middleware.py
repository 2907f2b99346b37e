"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers streams and costs per request).

``RequestContextMiddleware`` gives each request an id, logs it, records metrics by route template and
turns an unhandled exception into a 500 ``INTERNAL_ERROR`` *inside* the CORS layer
(``services.common.cors``), so even a crash reaches the browser with CORS headers.
``SecurityHeadersMiddleware`` adds the headers browsers act on (nosniff, framing, referrer, CSP).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import dependency_unavailable
from services.common.logging import get_logger
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS

_UNTRACKED = {"/health", "/ready", "/metrics"}
_UNAVAILABLE = b'{"detail":"a required service is unavailable, retry shortly","code":"SERVICE_UNAVAILABLE"}'

log = get_logger("eco2.http")


class SecurityHeadersMiddleware:
    """Headers every answer carries unless the route set its own (contract-neutral, browser-facing).

    The default policy suits JSON, SSE and files: nothing may load, run or frame. HTML pages set a
    policy of their own (``services.common.pages``), which this middleware leaves alone.
    """

    DEFAULTS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                headers += [(key, value) for key, value in self.DEFAULTS if key not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
        except ClientDisconnect:
            # The client went away while its request was read (an aborted upload): nobody is left
            # to answer and nothing failed here. Counted as 499 (nginx's "client closed request").
            status = 499
            log.info("client_disconnected", path=scope["path"])
        except Exception as exc:
            if dependency_unavailable(exc):
                log.warning("dependency_unavailable", path=scope["path"], error=repr(exc))
                if response_started:
                    raise
                status = 503
                await _send_json(send_wrapper, 503, _UNAVAILABLE, [(b"retry-after", b"1")])
                return
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


async def _send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def header(scope: Scope, name: bytes) -> str | None:
    return _header(scope, name)
