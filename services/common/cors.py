"""CORS and ``OPTIONS`` answered from the routes an app actually mounts (docs/api.md, conventions: CORS).

A hand-written list of methods and headers drifts from the routes: the local upload store's ``PUT``
was missing from it, so every browser upload failed its preflight. ``RouteIndex`` reads the mounted
routes instead — the methods each path accepts and the request headers its handlers (and their
dependencies) declare — and ``CORSMiddleware`` answers from it:

- preflight (``OPTIONS`` + ``Access-Control-Request-Method``), no authentication: 204 with the path's
  methods and headers for an allowed ``Origin``; a path no route matches gets the app-wide union, so
  the browser goes on to receive the JSON 404 (with CORS headers) instead of an opaque CORS failure;
- a plain ``OPTIONS`` on a known path: 204 with ``Allow`` (RFC 9110), so every route answers it;
- every other answer from an allowed origin — errors, crashes and SSE streams included — carries
  ``Access-Control-Allow-Origin``/``-Credentials``, ``Vary: Origin`` and ``Expose-Headers: Retry-After``.

``Content-Type`` is allowed wherever a path accepts a method that carries a body: endpoints "with no
body" accept ``{}`` too (docs/api.md, conventions: data), and a client may label it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.middleware import header

MAX_AGE = "600"
EXPOSE_HEADERS = b"Retry-After"
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
# Service-to-service routes: never called by a browser, so never advertised to one.
INTERNAL_PREFIX = "/internal/"


@dataclass(frozen=True)
class Allowed:
    methods: frozenset[str]
    headers: frozenset[str]

    def __or__(self, other: Allowed) -> Allowed:
        return Allowed(self.methods | other.methods, self.headers | other.headers)

    @property
    def allow_methods(self) -> str:
        methods = self.methods | {"OPTIONS"}
        return ", ".join(m for m in _METHOD_ORDER if m in methods)

    @property
    def allow_headers(self) -> str:
        headers = set(self.headers)
        if self.methods - _BODYLESS:
            headers.add("Content-Type")
        return ", ".join(sorted(headers))


_NOTHING = Allowed(frozenset(), frozenset())


def _canonical(name: str) -> str:
    special = {"last-event-id": "Last-Event-ID"}
    lowered = name.lower()
    return special.get(lowered) or "-".join(part.capitalize() for part in lowered.split("-"))


def declared_headers(dependant: Dependant) -> set[str]:
    """Request headers a route reads through ``Header()`` parameters, its own or its dependencies'."""
    found: set[str] = set()
    pending, seen = [dependant], set[int]()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.update(_canonical(field.alias) for field in current.header_params)
        pending.extend(current.dependencies)
    return found


def _flatten(routes: Sequence[BaseRoute]) -> list[Any]:
    """Every route with its effective path: FastAPI ≥ 0.16x keeps included routers as lazy
    branches in ``app.routes`` and flattens them with ``iter_route_contexts`` (as its OpenAPI does)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(iterate(routes)) if iterate is not None else list(routes)


class RouteIndex:
    """What each path of an app accepts. Built on first use: routers are all included by then."""

    def __init__(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self._routes = routes
        self._shapes: list[tuple[re.Pattern[str], Allowed]] | None = None
        self._union = _NOTHING

    def _build(self) -> list[tuple[re.Pattern[str], Allowed]]:
        shapes: list[tuple[re.Pattern[str], Allowed]] = []
        for route in _flatten(self._routes()):
            regex = getattr(route, "path_regex", None)
            methods = getattr(route, "methods", None)
            if regex is None or not methods or str(getattr(route, "path", "")).startswith(INTERNAL_PREFIX):
                continue
            dependant = getattr(route, "dependant", None)
            headers = declared_headers(dependant) if isinstance(dependant, Dependant) else set()
            shapes.append((regex, Allowed(frozenset(methods), frozenset(headers))))
        for _, allowed in shapes:
            self._union = self._union | allowed
        return shapes

    def lookup(self, path: str) -> Allowed | None:
        """The methods and headers of every route matching ``path``; ``None`` when none does."""
        if self._shapes is None:
            self._shapes = self._build()
        found = _NOTHING
        for regex, allowed in self._shapes:
            if regex.match(path):
                found = found | allowed
        return found if found.methods else None

    def union(self) -> Allowed:
        if self._shapes is None:
            self._shapes = self._build()
        return self._union


class CORSMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str], routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.allowed = frozenset(allowed_origins)
        self.index = RouteIndex(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        if origin is not None and origin not in self.allowed:
            origin = None
        if scope["method"] == "OPTIONS":
            allowed = self.index.lookup(scope["path"])
            if header(scope, b"access-control-request-method") is not None:
                await self._preflight(origin, allowed or self.index.union(), send)
                return
            if allowed is not None:
                await _empty(send, [(b"allow", allowed.allow_methods.encode()), *_cors(origin)])
                return
        if origin is None:
            await self.app(scope, receive, send)
            return
        extra = _cors(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str | None, allowed: Allowed, send: Send) -> None:
        headers = _cors(origin)
        if origin is not None:
            headers += [
                (b"access-control-allow-methods", allowed.allow_methods.encode()),
                (b"access-control-allow-headers", allowed.allow_headers.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
            ]
        await _empty(send, headers)


def _cors(origin: str | None) -> list[tuple[bytes, bytes]]:
    if origin is None:
        return [(b"vary", b"Origin")]
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-expose-headers", EXPOSE_HEADERS),
        (b"vary", b"Origin"),
    ]


async def _empty(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
