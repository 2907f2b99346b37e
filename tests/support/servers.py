"""Small real HTTP servers for tests: external services (OAuth providers, model APIs, feeds) are
replaced by local ASGI apps served by uvicorn on a loopback port, so our real httpx/SDK clients run
over real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from services.common.config import CommonSettings


def wait_until(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll ``check`` (exceptions count as "not yet") until it is truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {timeout:.0f}s")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_asgi(app: ASGIApp, port: int | None = None, *, lifespan: bool = False, **options: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a background thread; yields its base URL. With ``lifespan`` the
    app's start-up runs first (the URL is yielded once it completed) and its shutdown at the end;
    ``options`` are more of uvicorn's (e.g. the proxy-header trust)."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on" if lifespan else "off", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


REPO = Path(__file__).resolve().parents[2]
# Settings a developer's shell may hold that would change what `eco2 dev` does in a test.
_DEV_ENV_PREFIXES = ("SCAN_", "IMAGE_", "AUTH_KAKAO_", "AUTH_GOOGLE_", "AUTH_NAVER_", "DATABASE_URL", "REDIS_")
_DEV_ENV_PREFIXES += ("RABBITMQ_URL", "CORS_ALLOWED_ORIGINS", "PUBLIC_API_BASE_URL", "ENVIRONMENT", "ECO2_DATA_DIR")


def dev_environment(data_dir: Path, common: CommonSettings | None = None, **values: str) -> dict[str, str]:
    """The environment of an ``eco2 dev`` process: this one's, less stray settings, plus ``values``;
    with ``common``, its stores (real mode: the run's database, Redis prefix and broker namespace)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DEV_ENV_PREFIXES)}
    env |= {"ECO2_DATA_DIR": str(data_dir), "LOG_JSON": "true", "LOG_LEVEL": "WARNING"}
    if common is not None:
        stores = {
            "DATABASE_URL": common.database_url,
            "REDIS_URL": common.redis_url,
            "RABBITMQ_URL": common.rabbitmq_url,
            "REDIS_KEY_PREFIX": common.redis_key_prefix,
            "EVENTS_NAMESPACE": common.events_namespace,
            # Part of the queues' declared arguments: a different value is refused by the broker.
            "EVENTS_MAX_DELIVERIES": str(common.events_max_deliveries),
            "INTERNAL_TOKEN": common.internal_token,
        }
        env |= {name: value for name, value in stores.items() if value}
    return env | values


@contextmanager
def eco2_dev(port: int, env: dict[str, str], *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``eco2 dev`` as a developer starts it, in a process of its own (its in-process queues and
    bus stay out of this one); yields the process once it answers ``/health``. Output → ``log``."""
    command = [sys.executable, "-m", "services.cli", "dev", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"eco2 dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"eco2 dev did not answer in 90 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield process
        finally:
            stop_process(process, 30)


def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
