"""Running an ASGI app under uvicorn, with a shutdown that open SSE streams hear about.

uvicorn's graceful shutdown waits for open responses to finish before the app's lifespan ends, and an
SSE stream only ends by itself after up to 300 s. So the moment a shutdown signal arrives, every open
job stream is told to send ``error``/``connection_reset`` and close (docs/api.md, SSE connection steps); clients
reconnect with ``Last-Event-ID`` at once, to a replica that is not going away.
"""

from __future__ import annotations

import asyncio
import socket
from types import FrameType
from typing import Any

import uvicorn

from services.common.config import CommonSettings
from services.common.jobs.stream import DRAIN, drain_streams


class DrainingServer(uvicorn.Server):
    _loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        DRAIN.draining = False
        try:
            await super().serve(sockets)
        finally:
            DRAIN.draining = False  # this server is gone; another one in this process starts fresh

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Signal handlers run between bytecodes of the main thread: hand the drain to the loop.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(drain_streams)
        super().handle_exit(sig, frame)


def proxy_options(common: CommonSettings) -> dict[str, Any]:
    """uvicorn's proxy-header trust from the settings: ``X-Forwarded-For`` and ``X-Forwarded-Proto``
    are believed only from ``FORWARDED_ALLOW_IPS`` (the load balancer's and nodes' networks), and the
    client address is the rightmost one not in those networks — what a client writes into the header
    itself stays to the left of it."""
    return {"proxy_headers": True, "forwarded_allow_ips": common.forwarded_allow_ips}


def run(app: Any, *, sockets: list[socket.socket] | None = None, **options: Any) -> None:
    """``uvicorn.run`` with a :class:`DrainingServer`."""
    DrainingServer(uvicorn.Config(app, **options)).run(sockets=sockets)
