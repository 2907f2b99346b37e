"""Small real HTTP servers for tests: external services (OAuth providers, model APIs, feeds) are
replaced by local ASGI apps served by uvicorn on a loopback port, so our real httpx/SDK clients run
over real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


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
def serve_asgi(app: ASGIApp, port: int | None = None, *, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a background thread; yields its base URL. ``lifespan="on"``
    for a full app (its start-up runs before the URL is handed out)."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
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
