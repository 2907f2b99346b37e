"""Development gateway: every service in one process, each mounted at its own path prefix.

Services keep their full paths (``/api/v1/auth/...``), exactly as the production ingress routes
them, so the gateway dispatches on the prefix without rewriting anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.app import VERSION
from services.common.config import CommonSettings
from services.common.errors import install_error_handlers
from services.common.identity import ServiceEntry
from services.common.middleware import CORSMiddleware
from services.registry import SERVICES
from services.workers import background_workers


class PrefixDispatcher:
    def __init__(self, routes: Sequence[tuple[str, ASGIApp]], fallback: ASGIApp) -> None:
        # Longest prefix first so a future "/api/v1/scan-admin" can never shadow "/api/v1/scan".
        self.routes = sorted(routes, key=lambda item: len(item[0]), reverse=True)
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            for prefix, app in self.routes:
                if path == prefix or path.startswith(prefix + "/"):
                    await app(scope, receive, send)
                    return
        await self.fallback(scope, receive, send)


def create_gateway(
    entries: Sequence[ServiceEntry], common: CommonSettings, *, run_workers: bool = True
) -> PrefixDispatcher:
    apps = {entry.name: entry.create_app(common=common) for entry in entries}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            if run_workers:
                await stack.enter_async_context(background_workers(common))
            yield

    gateway = FastAPI(title="Eco² dev gateway", version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(gateway)

    @gateway.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "gateway", "version": VERSION}

    @gateway.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        checks: dict[str, str] = {}
        for name, app in apps.items():
            for check, result in (await app.state.runtime.readiness()).items():
                checks[f"{name}.{check}"] = result
        ok = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    @gateway.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_index_page(entries, common))

    fallback = CORSMiddleware(gateway, common.cors_allowed_origins)
    routes = [(entry.prefix, apps[entry.name]) for entry in entries]
    # In dev the one server also answers internal calls (the scan service calls the character
    # service's reward endpoint at its own base URL).
    routes += [(entry.internal_prefix, apps[entry.name]) for entry in entries]
    return PrefixDispatcher(routes, fallback)


def _index_page(entries: Sequence[ServiceEntry], common: CommonSettings) -> str:
    docs = "".join(f'<li><a href="{e.prefix}/docs">{e.name}</a> <code>{e.prefix}</code></li>' for e in entries)
    auth, me = SERVICES["auth"].prefix, SERVICES["my"].public_url("", "/me")
    return f"""<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>Eco² dev</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:720px;margin:40px auto;padding:0 16px;color:#1d2b1f}}
button{{margin:4px 8px 4px 0;padding:8px 12px}}pre{{background:#f3f7f2;padding:12px;white-space:pre-wrap}}</style>
</head><body><h1>Eco² backend — local development</h1>
<p>All services run in this process on embedded adapters (SQLite, in-process cache and bus).</p>
<p><a href="{auth}/dev/start?frontend_origin={common.public_api_base_url}">개발용 로그인 (dev login)</a>
— after logging in you come back here with the <code>s_access</code>/<code>s_refresh</code> cookies set.</p>
<button onclick="call('POST','{auth}/refresh')">POST /auth/refresh</button>
<button onclick="call('POST','{auth}/logout')">POST /auth/logout</button>
<button onclick="call('GET','{me}')">GET /users/me</button>
<pre id="out"></pre>
<h2>API docs</h2><ul>{docs}</ul>
<script>
document.getElementById('out').textContent = location.hash ? 'route: ' + location.hash : '';
async function call(method, path) {{
  const r = await fetch(path, {{method, credentials: 'include'}});
  document.getElementById('out').textContent = method + ' ' + path + ' → ' + r.status + '\\n' + await r.text();
}}
</script></body></html>"""
