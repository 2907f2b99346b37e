"""Builds a service's FastAPI app the same way for every service."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from services.common.config import CommonSettings
from services.common.cors import CORSMiddleware
from services.common.errors import install_error_handlers
from services.common.logging import configure_logging
from services.common.metrics import metrics_endpoint
from services.common.middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from services.common.pages import swagger_page
from services.common.runtime import ServiceRuntime

ServiceLifespan = Callable[[FastAPI, ServiceRuntime], AbstractAsyncContextManager[None]]

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


def create_service_app(
    *,
    name: str,
    prefix: str,
    common: CommonSettings,
    routers: Sequence[APIRouter],
    schema: str | None = None,
    lifespan: ServiceLifespan | None = None,
    description: str = "",
) -> FastAPI:
    configure_logging(common.log_level, common.log_json)

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
    )
    app.state.service_name = name
    install_error_handlers(app)
    if docs:  # before the routers: a pattern such as ``/api/v1/auth/{provider}`` must not shadow it

        @app.api_route(f"{prefix}/docs", methods=["GET", "HEAD"], include_in_schema=False)
        async def swagger_ui() -> HTMLResponse:
            return swagger_page(f"{prefix}/openapi.json", app.title)

    for router in routers:
        app.include_router(router)

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

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.add_middleware(RequestContextMiddleware, service=name)
    app.add_middleware(SecurityHeadersMiddleware)  # outside: a crash's 500 carries them too
    app.add_middleware(CORSMiddleware, allowed_origins=common.cors_allowed_origins, routes=lambda: app.routes)
    return app
