"""Development gateway: every service in one process, each mounted at its own path prefix.

Services keep their full paths (``/api/v1/auth/...``), exactly as the production ingress routes
them, so the gateway dispatches on the prefix without rewriting anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.app import VERSION
from services.common.config import CommonSettings
from services.common.cors import CORSMiddleware
from services.common.errors import install_error_handlers
from services.common.identity import ServiceEntry
from services.common.metrics import metrics_endpoint
from services.common.middleware import SecurityHeadersMiddleware
from services.common.pages import favicon_response, html_page
from services.common.tracing import fastapi_telemetry
from services.registry import SERVICES
from services.scan.config import ScanSettings
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

    gateway = FastAPI(
        title="Eco² dev gateway",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=fastapi_telemetry(),  # type: ignore[arg-type]
    )
    install_error_handlers(gateway)

    @gateway.api_route("/health", methods=["GET", "HEAD"], include_in_schema=False)
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

    # The one process's metrics: every service, the relay, the consumers and the workers it runs.
    gateway.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    @gateway.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> HTMLResponse:
        return html_page(_index_page(entries, common, ScanSettings()), connect_src=["'self'"])

    @gateway.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> Response:
        return favicon_response()

    fallback = CORSMiddleware(
        SecurityHeadersMiddleware(gateway), common.cors_allowed_origins, routes=lambda: gateway.routes
    )
    routes = [(entry.prefix, apps[entry.name]) for entry in entries]
    # In dev the one server also answers internal calls (the scan service calls the character
    # service's reward endpoint at its own base URL).
    routes += [(entry.internal_prefix, apps[entry.name]) for entry in entries]
    return PrefixDispatcher(routes, fallback)


def _model_status(scan: ScanSettings) -> str:
    if scan.uses_model:
        where = escape(scan.llm_base_url or "https://api.openai.com/v1")
        return (
            f"<p><b>연결됨 (connected)</b>: <code>{escape(', '.join(scan.models))}</code> at <code>{where}</code>"
            " — photos are classified by this model.</p>"
        )
    return (
        "<p><b>없음 (none)</b>: without a vision model a photo can only be classified from a typed note; "
        "a photo alone ends with <code>CLASSIFICATION_FAILED</code> (<code>reason: VISION_UNAVAILABLE</code>) "
        "and a Korean message saying image recognition needs a model.</p>"
        "<p>Connect any OpenAI-compatible vision endpoint — a local server (llama.cpp, vLLM, Ollama's "
        "<code>/v1</code>) or a hosted one:</p>"
        "<pre>uv run eco2 dev --model-url http://127.0.0.1:8080/v1            # model id asked from /models\n"
        "uv run eco2 dev --model-url https://api.openai.com/v1 --model gpt-4o-mini --model-key sk-...</pre>"
        "<p>The same as environment: <code>SCAN_LLM_BASE_URL</code>, <code>SCAN_MODELS</code>, "
        "<code>SCAN_LLM_API_KEY</code>.</p>"
    )


def _index_page(entries: Sequence[ServiceEntry], common: CommonSettings, scan: ScanSettings) -> str:
    docs = "".join(f'<li><a href="{e.prefix}/docs">{e.name}</a> <code>{e.prefix}</code></li>' for e in entries)
    base = escape(common.public_api_base_url)
    auth, me = SERVICES["auth"].prefix, SERVICES["my"].public_url("", "/me")
    return f"""<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>Eco² dev</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="/favicon.ico">
<style>body{{font-family:system-ui,sans-serif;max-width:720px;margin:40px auto;padding:0 16px;color:#1d2b1f}}
button{{margin:4px 8px 4px 0;padding:8px 12px}}pre{{background:#f3f7f2;padding:12px;white-space:pre-wrap}}</style>
</head><body><h1>Eco² backend — local development</h1>
<p>All services run in this process. Data lives in <code>{escape(str(common.data_dir))}</code>.</p>
<h2>로그인 (login)</h2>
<p><a href="{auth}/dev/start?frontend_origin={base}">개발용 로그인 (dev login)</a>
— after logging in you come back here with the <code>s_access</code>/<code>s_refresh</code> cookies set.</p>
<p>The client's 카카오 / 구글 / 네이버 buttons work too: a provider without credentials opens this development
login form, labelled with that provider's name (development only, never in production).</p>
<button data-method="POST" data-path="{auth}/refresh">POST /auth/refresh</button>
<button data-method="POST" data-path="{auth}/logout">POST /auth/logout</button>
<button data-method="GET" data-path="{me}">GET /users/me</button>
<pre id="out"></pre>
<h2>이미지 인식 모델 (image recognition)</h2>
{_model_status(scan)}
<h2>API docs</h2><ul>{docs}</ul>
<script>
const out = document.getElementById('out');
out.textContent = location.hash ? 'route: ' + location.hash : '';
for (const button of document.querySelectorAll('button[data-path]')) {{
  button.addEventListener('click', async () => {{
    const {{method, path}} = button.dataset;
    const r = await fetch(path, {{method, credentials: 'include'}});
    out.textContent = method + ' ' + path + ' → ' + r.status + '\n' + await r.text();
  }});
}}
</script></body></html>"""
