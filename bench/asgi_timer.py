"""Server-side time of each request: an ASGI wrapper that times the app from the request's arrival to
its last body byte, leaving out the client's work (the in-process httpx client costs as much as a
small endpoint). Used by the info benchmarks."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send


class ServerTimer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.samples: list[float] = []  # milliseconds, one per HTTP request (lifespan passes through)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.samples.append((time.perf_counter() - started) * 1000)

    def take(self) -> list[float]:
        taken, self.samples = self.samples, []
        return taken
