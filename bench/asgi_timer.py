"""Server-side time of each request: an ASGI wrapper that times the app from the request's arrival to
its last body byte, leaving out the client's work (the in-process httpx client costs as much as a
small endpoint). Used by the info benchmarks.

Two clocks per request: wall time (what a caller waits, CPU contention included — on a shared
2-core machine other people's jobs dominate its tail) and this thread's CPU time (what the request
itself costs the server process; a database's own work runs in its process and is not counted)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send


class ServerTimer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.samples: list[float] = []  # wall milliseconds, one per HTTP request (lifespan passes through)
        self.cpu: list[float] = []  # CPU milliseconds of the serving thread, same requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, cpu = time.perf_counter(), time.thread_time()
        await self.app(scope, receive, send)
        self.cpu.append((time.thread_time() - cpu) * 1000)
        self.samples.append((time.perf_counter() - started) * 1000)

    def take(self) -> tuple[list[float], list[float]]:
        """(wall, cpu) samples since the last call."""
        taken = (self.samples, self.cpu)
        self.samples, self.cpu = [], []
        return taken
