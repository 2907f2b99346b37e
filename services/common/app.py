"""Builds a service's FastAPI app the same way for every service."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import iter_route_contexts

from services.common.config import CommonSettings, ServiceSettings
from services.common.cors import CORSMiddleware
from services.common.deps import current_stream_user, current_user
from services.common.errors import install_error_handlers
from services.common.identity import ServiceEntry
from services.common.internal import require_internal
from services.common.logging import configure_logging
from services.common.metrics import metrics_endpoint
from services.common.middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from services.common.pages import swagger_page
from services.common.runtime import ServiceRuntime
from services.common.security import ACCESS_COOKIE, REFRESH_COOKIE
from services.common.tracing import fastapi_telemetry

ServiceLifespan = Callable[[FastAPI, ServiceRuntime], AbstractAsyncContextManager[None]]
S = TypeVar("S", bound=ServiceSettings)
SettingsLifespan = Callable[[FastAPI, ServiceRuntime, S], AbstractAsyncContextManager[None]]

try:
    VERSION = version("eco2")
except PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0"


def _settle_heap() -> None:
    """Move everything built at start-up (modules, models, settings, caches) out of the garbage
    collector's view. A full collection otherwise re-scans that whole, never-freed heap: tens of ms
    of pause every few seconds under load, a stall of every request in flight."""
    gc.collect()
    gc.freeze()


def _uses(dependant: Dependant, calls: frozenset[Any]) -> set[Any]:
    found = {dependant.call} & calls
    for sub in dependant.dependencies:
        found |= _uses(sub, calls)
    return found


def authenticated_routes(app: FastAPI) -> list[str]:
    """``METHOD path`` of every route that verifies a user's token (``CurrentUser``/``StreamUser``):
    a service with none never reads the auth service's keys (no ``JWKS_URL``, no JWKS egress)."""
    calls = frozenset({current_user, current_stream_user})
    return [
        f"{method} {route.path_format}"
        for route in iter_route_contexts(app.routes)
        if (dependant := getattr(route, "dependant", None)) is not None and _uses(dependant, calls)
        for method in sorted(getattr(route, "methods", None) or ())
    ]


def document_auth(app: FastAPI) -> None:
    """Declare in the OpenAPI document how each operation authenticates (docs/api.md, conventions:
    authentication): ``user`` = bearer header or ``s_access`` cookie, ``user/stream`` also the
    ``s_refresh`` cookie. Read from the routes' dependencies when the document is built, so the
    request path carries no extra dependency."""
    build = app.openapi
    schemes = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "accessCookie": {"type": "apiKey", "in": "cookie", "name": ACCESS_COOKIE},
        "refreshCookie": {"type": "apiKey", "in": "cookie", "name": REFRESH_COOKIE},
    }
    user: list[dict[str, list[str]]] = [{"bearer": []}, {"accessCookie": []}]
    stream: list[dict[str, list[str]]] = [{"refreshCookie": []}]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        secured = False
        for route in iter_route_contexts(app.routes):  # included routers' routes too
            dependant = getattr(route, "dependant", None)
            if dependant is None or not getattr(route, "include_in_schema", False) or route.path_format is None:
                continue
            used = _uses(dependant, frozenset({current_user, current_stream_user}))
            if not used:
                continue
            secured = True
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    operation["security"] = user + (stream if current_stream_user in used else [])
        if secured:
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_service_app(
    service: ServiceEntry,
    *,
    common: CommonSettings,
    routers: Sequence[APIRouter],
    internal: Sequence[APIRouter] = (),
    lifespan: ServiceLifespan | None = None,
    description: str = "",
) -> FastAPI:
    """The service's app: ``routers`` mounted at its public prefix, ``internal`` ones at its internal
    prefix (behind the internal token, left out of the OpenAPI schema), probes and metrics at the root."""
    configure_logging(common.log_level, common.log_json)
    name, prefix = service.name, service.prefix
    schema = name if service.has_migrations else None

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime(name, schema, common)
        app.state.runtime = runtime
        try:
            if lifespan is None:
                _settle_heap()
                yield
            else:
                async with lifespan(app, runtime):
                    _settle_heap()
                    yield
        finally:
            await runtime.close()

    docs = common.docs_enabled
    app = FastAPI(
        title=f"Eco² {name}",
        description=description,
        version=VERSION,
        docs_url=None,  # served below, with the page's own security headers
        openapi_url=f"{prefix}/openapi.json" if docs else None,
        redoc_url=None,
        lifespan=app_lifespan,
        telemetry=fastapi_telemetry(),  # type: ignore[arg-type]
    )
    app.state.service_name = name
    install_error_handlers(app)
    if docs:  # before the routers: a pattern such as ``/api/v1/auth/{provider}`` must not shadow it

        @app.api_route(f"{prefix}/docs", methods=["GET", "HEAD"], include_in_schema=False)
        async def swagger_ui() -> HTMLResponse:
            return swagger_page(f"{prefix}/openapi.json", app.title)

        app.docs_url = f"{prefix}/docs"  # where the docs are (FastAPI's own route was not added)

    # Routers are written relative to the service; metrics label a request by its full route template.
    templates: dict[int, str] = {}
    for router in routers:
        app.include_router(router, prefix=prefix)
        templates.update((id(route), prefix + getattr(route, "path", "")) for route in router.routes)
    for router in internal:
        app.include_router(
            router, prefix=service.internal_prefix, include_in_schema=False, dependencies=[Depends(require_internal)]
        )
        templates.update((id(route), service.internal_prefix + getattr(route, "path", "")) for route in router.routes)

    @app.api_route("/health", methods=["GET", "HEAD"], include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": name, "version": VERSION}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        checks = await app.state.runtime.readiness()
        ok = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    document_auth(app)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.add_middleware(RequestContextMiddleware, service=name, templates=templates)
    app.add_middleware(SecurityHeadersMiddleware)  # outside: a crash's 500 carries them too
    app.add_middleware(CORSMiddleware, allowed_origins=common.cors_allowed_origins, routes=lambda: app.routes)
    return app


class ServiceApp(Generic[S]):
    """A service's ``create_app(common=None, settings=None)``: settings read from the environment
    unless given (tests pass their own), the lifespan handed the runtime and the settings."""

    def __init__(
        self,
        service: ServiceEntry,
        settings: type[S],
        *,
        routers: Sequence[APIRouter],
        internal: Sequence[APIRouter] = (),
        lifespan: SettingsLifespan[S] | None = None,
        description: str = "",
    ) -> None:
        self.service, self.settings, self.lifespan = service, settings, lifespan
        self.routers, self.internal, self.description = routers, internal, description

    def __call__(self, common: CommonSettings | None = None, settings: S | None = None) -> FastAPI:
        chosen = settings or self.settings()
        lifespan = self.lifespan

        def bound(app: FastAPI, runtime: ServiceRuntime) -> AbstractAsyncContextManager[None]:
            assert lifespan is not None
            return lifespan(app, runtime, chosen)

        return create_service_app(
            self.service,
            common=common or CommonSettings(),
            routers=self.routers,
            internal=self.internal,
            lifespan=bound if lifespan is not None else None,
            description=self.description,
        )
