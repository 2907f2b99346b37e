"""Fault: the server shuts down while SSE streams are open (docs/api.md, SSE ``connection_reset``).

The scan app is served by the same uvicorn server class production uses (``services.common.serving``)
on a real port; the test delivers the shutdown signal the way uvicorn's handler receives it. Every
open stream must get ``event: error`` / ``connection_reset`` (with the last delivered seq as ``id``)
and be closed — before the server finishes shutting down, not after its 300 s limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator

import httpx
import uvicorn

from services.common.jobs.stream import DRAIN
from services.common.serving import DrainingServer
from tests.scan.conftest import StackFactory, parse_sse
from tests.support.servers import free_port

STREAMS = 5


class _TestServer(DrainingServer):
    """No process-wide signal handlers in a test process (uvicorn re-raises captured signals on
    exit); ``handle_exit`` is called directly instead, as uvicorn's handler would."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def test_shutdown_sends_connection_reset_to_open_streams(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)  # no worker: the jobs stay queued, the streams stay open
    jobs = [(await stack.submit("생수병")).json()["job_id"] for _ in range(STREAMS)]
    port = free_port()
    server = _TestServer(uvicorn.Config(stack.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.01)

    async def follow(client: httpx.AsyncClient, job_id: str, opened: asyncio.Event) -> str:
        url = f"http://127.0.0.1:{port}/api/v1/scan/{job_id}/events"
        async with client.stream("GET", url, headers=stack.headers) as response:
            assert response.status_code == 200
            text = ""
            async for chunk in response.aiter_text():
                text += chunk
                if "event: queued" in text:
                    opened.set()
            return text

    async with httpx.AsyncClient(timeout=30) as client:
        opened = [asyncio.Event() for _ in jobs]
        readers = [asyncio.create_task(follow(client, job, event)) for job, event in zip(jobs, opened, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 10)
        started = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
        texts = await asyncio.wait_for(asyncio.gather(*readers), 10)
        took = time.monotonic() - started
    await asyncio.wait_for(serving, 10)

    for text in texts:
        frames = parse_sse(text)
        assert frames[-1]["event"] == "error", frames
        assert frames[-1]["data"]["error"] == "connection_reset"
        assert frames[-1]["id"] == "1"  # the last delivered seq: the reconnect resumes there
    assert took < 5, f"streams closed {took:.1f}s after the signal"
    print(f"\nshutdown drain: streams={len(texts)} reset={len(texts)} closed_in={took:.2f}s lost=0")
    assert not DRAIN.draining  # a later server in this process starts fresh
