"""A real browser against a real server: headless Chromium (Debian's package) driven by Selenium
through Debian's chromedriver, the API run as ``eco2 dev`` (uvicorn, its own process) on a loopback
port, and a test page served from a different origin (another port) — the situation of the mobile
client in production.

Why Selenium: it is the W3C WebDriver reference client, drives the chromedriver that Debian builds
from the same source as its Chromium (versions always match, nothing is downloaded), and reads the
browser's console and DevTools network log, which the failure output shows.

Cookies: the contract's cookies are ``Secure``. Chromium treats ``http://localhost`` as a
potentially trustworthy origin, stores Secure cookies from it and sends them back (checked by
``test_client_flow``), so the loopback test keeps the production attributes unchanged. Page and API
are both on ``localhost`` (different ports): same-site, as the contract requires of the client and
the API, so ``SameSite=Lax`` behaves as in production.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from services.common.config import CommonSettings
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import dev_environment, eco2_dev, free_port, serve_asgi

PAGE_DIR = Path(__file__).parent / "page"
# The sandbox flags the brief lists: no setuid sandbox (root in a container), no GPU, nothing
# phoning home, a fresh profile per run.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=412,915",
)
# Each SSE connection lives at most this long, so the scan stream is cut once mid-job and the
# browser's own reconnect (with Last-Event-ID) is exercised; the model answers slowly enough for it.
SSE_MAX_SECONDS = 2.0
MODEL_LATENCY = {"classification": 1.5, "answer": 1.5}


@dataclass(frozen=True)
class Browser:
    chromium: str
    chromedriver: str


@pytest.fixture(scope="session")
def browser_binaries() -> Browser:
    # Debian's chromium first (what CI installs); Google Chrome (e.g. on GitHub's runners) also does.
    names = ("chromium", "chromium-browser", "google-chrome")
    chromium = os.environ.get("ECO2_CHROMIUM") or next(filter(None, map(shutil.which, names)), None)
    driver = os.environ.get("ECO2_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "no browser: Chromium and chromedriver are not installed "
            "(run scripts/ci/ensure_browser.sh, which installs Debian's chromium and chromium-driver)"
        )
    return Browser(chromium, driver)


@dataclass(frozen=True)
class Site:
    api: str  # origin of the API: `eco2 dev`, every service behind one origin
    page: str  # origin of the test page, another port: a different origin, the same site
    llm: FakeOpenAI
    log: Path  # the API process's output


@pytest.fixture(scope="module")
def site(
    migrated: CommonSettings, browser_binaries: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    api_port, page_port = free_port(), free_port()
    api, page = f"http://localhost:{api_port}", f"http://localhost:{page_port}"
    llm = FakeOpenAI(latency=dict(MODEL_LATENCY))
    work = tmp_path_factory.mktemp("browser-site")
    # `eco2 dev --model-url` as a developer runs it (its own process: real mode on the run's stores):
    # development, dev login on, no social credentials — so the client's Kakao button is served by
    # the labelled dev login form — and a vision model.
    env = dev_environment(
        work / "data",
        migrated if migrated.database_url else None,
        PUBLIC_API_BASE_URL=api,
        CORS_ALLOWED_ORIGINS=page,
        AUTH_FRONTEND_URL=page,
        SCAN_SSE_MAX_SECONDS=str(SSE_MAX_SECONDS),
    )
    log = work / "eco2-dev.log"
    with (
        serve_asgi(llm.app()) as llm_url,
        serve_asgi(_page_app(api), page_port),
        eco2_dev(api_port, env, "--model-url", f"{llm_url}/v1", log=log),
    ):
        yield Site(api, page, llm, log)


def _page_app(api: str) -> Starlette:
    async def config(_: Any) -> Response:
        return Response(f"window.ECO2_API = {json.dumps(api)};", media_type="text/javascript")

    def static(name: str) -> Route:
        async def serve(_: Any) -> FileResponse:
            return FileResponse(PAGE_DIR / name, headers={"Cache-Control": "no-store"})

        return Route(f"/{'' if name == 'index.html' else name}", serve)

    return Starlette(routes=[static("index.html"), static("client.js"), Route("/config.js", config)])


@pytest.fixture
def driver(browser_binaries: Browser, tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_binaries.chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    # The console and the DevTools network events, for assertions and for the failure report.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=browser_binaries.chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    chrome = webdriver.Chrome(service=service, options=options)
    chrome.set_script_timeout(10)
    try:
        yield chrome
    finally:
        chrome.quit()
