"""Routes whose common case skips FastAPI's per-request parameter machinery.

FastAPI solves an endpoint's parameters on every request — reads the body, walks the dependency
tree, validates each header and path parameter with pydantic — and on a fast endpoint that is a
large share of its CPU (≈ 25 % of an in-process `GET /scan/{id}/result`, docs/benchmarks.md, eleventh
round). A route of ``DirectRouter`` may carry a *direct* handler (``@direct(handler)``) that reads what
it needs from the request itself and answers the common case; it returns ``None`` for anything it
does not handle (a missing or odd header, a body that does not validate…), and the request then goes
through FastAPI's own handler, which answers exactly as before (422s and their bodies included).

The endpoint function stays as declared: the OpenAPI document, the CORS preflight's declared headers
and the auth documentation are all built from its signature. The direct handler runs inside the same
ASGI wrapping as the standard one, so exceptions it raises (``Unauthorized``, ``NotFound``…) reach the
same exception handlers. It replaces *every* dependency of the route, those added where the router is
included too (``require_internal`` on internal routers): it calls them itself. For the same reason
``app.dependency_overrides`` do not reach it (nothing here uses them).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

DirectHandler = Callable[[Request], Awaitable[Response | None]]
E = TypeVar("E", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def direct(handler: DirectHandler) -> Callable[[E], E]:
    """Attach ``handler`` to an endpoint of a ``DirectRouter`` (decorate below the route decorator's line)."""

    def attach(endpoint: E) -> E:
        endpoint.__direct__ = handler  # type: ignore[attr-defined]
        return endpoint

    return attach


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        handler: DirectHandler | None = getattr(self.endpoint, "__direct__", None)
        if handler is None:
            return standard

        async def answer(request: Request) -> Response:
            response = await handler(request)
            return response if response is not None else await standard(request)

        return answer


def DirectRouter(**options: Any) -> APIRouter:  # noqa: N802 - reads like the class it builds
    return APIRouter(route_class=DirectRoute, **options)


async def json_body(request: Request, model: type[M]) -> M | None:
    """The request's JSON body as ``model``, parsed and validated as FastAPI does it (``json.loads``,
    then the model in Python mode) — or ``None`` (not ``application/json``, not JSON, not valid):
    the direct handler then leaves the request to FastAPI, whose answer (422 …) is the contract's."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/json":
        return None  # FastAPI's own rules decide the rest (``+json`` types, no content type)
    try:
        return model.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):  # JSON errors are ValueErrors
        return None
