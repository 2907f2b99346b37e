"""Server-Sent Events of a job (scan and chat), as docs/api.md (SSE) spells them.

``JobStreamResponse`` is a plain ASGI response (no task group): it writes ``retry: 3000``, replays
the job's log, follows live frames from the process's hub, sends ``keepalive`` every 15 s, closes
after the terminal event, and after 300 s sends an ``error``/``timeout`` frame. Frames ready at the
same moment (``retry`` + the replay, a stage's ``completed`` + the next ``started``) go out as one
body chunk, and one timer per keepalive period wakes an idle stream: per frame, the cost is the
encoding and the socket write. One extra task per connection waits for the client to go away (it
also wakes the stream). Everything else a stream holds is a small subscription object, which is what
keeps thousands of idle streams cheap.

What the replay sends is a policy (``Replay``): given the events stored when the client connected
and its ``Last-Event-ID``, the frames to write before going live. ``replay_all`` (scan; any resumed
connection) sends them all; ``snapshot_tokens`` (chat, a fresh connection to a running job) sends the
stage events and one ``token_recovery`` frame with the text of the tokens so far. Live frames after
the replay's last seq follow either way, so no token is lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.common.clock import iso_ms, utcnow
from services.common.jobs.eventlog import TERMINAL_EVENT, Frame, JobEventLog, Subscription, event_data
from services.common.logging import get_logger
from services.common.metrics import SSE_FRAMES, SSE_OPEN

log = get_logger("eco2.sse")

RETRY_MS = 3000
RETRY = f"retry: {RETRY_MS}\n\n".encode()
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
ACTIVE = {"streams": 0}  # open streams in this process (benchmarks; the metric is eco2_sse_streams_open)
TOKEN_EVENT = "token"  # noqa: S105 - an SSE event name
RECOVERY_EVENT = "token_recovery"

# (events stored at connect time after Last-Event-ID, the Last-Event-ID or None) -> frames to write.
Replay = Callable[[Sequence[Frame], int | None], list[Frame]]


def replay_all(backlog: Sequence[Frame], last_event_id: int | None) -> list[Frame]:
    """Every stored event after the resume point (docs/api.md, SSE connection steps 3–4)."""
    return list(backlog)


def snapshot_tokens(backlog: Sequence[Frame], last_event_id: int | None) -> list[Frame]:
    """A fresh connection to a job that streams tokens (docs/api.md, SSE connection steps 5–6).

    Running job: the snapshot point S is the last stored seq; the stage events up to S, then one
    ``token_recovery`` frame (``id:`` S) holding the text of every token up to S. Finished job: the
    stage events and ``done``, no snapshot. A resumed connection replays everything after its id.
    """
    if last_event_id is not None or not backlog:
        return list(backlog)
    stages = [frame for frame in backlog if frame.event != TOKEN_EVENT]
    if any(frame.event == TERMINAL_EVENT for frame in backlog):
        return stages
    point = backlog[-1].seq
    events = [(frame.event, json.loads(frame.data)) for frame in backlog]
    text = "".join(str(data.get("content", "")) for event, data in events if event == TOKEN_EVENT)
    progress = max(int(data.get("progress", 0)) for _, data in events)
    job_id = str(events[-1][1]["job_id"])
    # ``completed`` is always false: the client drops an answer it is told is complete; ``done`` carries it.
    snapshot = event_data(
        job_id, RECOVERY_EVENT, "snapshot", progress, accumulated=text, last_seq=point, completed=False
    )
    body = json.dumps({"seq": point, **snapshot}, ensure_ascii=False, separators=(",", ":"))
    return [*stages, Frame(point, RECOVERY_EVENT, body)]


class _Drain:
    """Server shutdown: every open stream ends with ``error``/``connection_reset`` (docs/api.md, SSE
    error frames) before the connection closes, so clients reconnect (to another replica) at once."""

    def __init__(self) -> None:
        self.draining = False
        self.wakes: set[asyncio.Event] = set()

    def start(self) -> None:
        self.draining = True
        for wake in list(self.wakes):
            wake.set()


DRAIN = _Drain()


def drain_streams() -> None:
    """Called by the server when it starts shutting down (``services.common.serving``)."""
    DRAIN.start()


def parse_last_event_id(value: str | None) -> int | None:
    """A decimal seq, or ``None`` (missing/unparsable → a fresh connection, docs/api.md SSE step 2)."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def encode(frame: Frame) -> bytes:
    return f"id: {frame.seq}\nevent: {frame.event}\ndata: {frame.data}\n\n".encode()


def keepalive() -> bytes:
    return f'event: keepalive\ndata: {{"ts":"{iso_ms(utcnow())}"}}\n\n'.encode()


def error_frame(last_seq: int, error: str, message: str) -> bytes:
    data = json.dumps({"error": error, "message": message}, ensure_ascii=False, separators=(",", ":"))
    return f"id: {last_seq}\nevent: error\ndata: {data}\n\n".encode()


class _ClientGone(Exception):
    pass


class JobStreamResponse(Response):
    def __init__(
        self,
        events: JobEventLog,
        job_id: str,
        last_event_id: int | None,
        *,
        terminal_event: str = TERMINAL_EVENT,
        keepalive_seconds: float = 15.0,
        max_seconds: float = 300.0,
        finished: Callable[[], Awaitable[Frame | None]] | None = None,
        finished_when_idle: bool = False,
        replay: Replay = replay_all,
        subscription: Subscription | None = None,
        backlog: Sequence[Frame] | None = None,
    ) -> None:
        # No super().__init__: nothing is rendered up front.
        # ``subscription`` + ``backlog``: the caller subscribed (``events.attach``) and then read the
        # events after ``last_event_id`` (e.g. together with the ownership check, one round trip); the
        # stream owns the subscription from here and removes it when it ends.
        self._sub = subscription
        self._backlog = backlog
        self.events = events
        self.job_id = job_id
        self.last_event_id = last_event_id
        self.terminal_event = terminal_event
        self.keepalive_seconds = keepalive_seconds
        self.max_seconds = max_seconds
        # For a job that is over although its log lacks the terminal event: returns that event.
        # Asked at connect time, or — ``finished_when_idle``, when the caller does not know whether the
        # job is over — once, at the first keepalive after a whole keepalive period without a frame (a
        # job whose terminal event was never appended still ends its stream, without a read per connect).
        self.finished = finished
        self.finished_when_idle = finished_when_idle
        self.replay = replay
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    if self._sub is not None:
                        self._sub.wake.set()
                    return

        async def write(chunk: bytes) -> None:
            if gone.is_set():
                raise _ClientGone
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError as exc:  # uvicorn reports a vanished client like this
                raise _ClientGone from exc

        # The job service's name (the app serving this route), for the metrics' ``service`` label.
        service = str(getattr(getattr(scope.get("app"), "state", None), "service_name", "jobs"))
        counters = (SSE_FRAMES(service, "replay"), SSE_FRAMES(service, "live"),
                    SSE_FRAMES(service, "keepalive"), SSE_FRAMES(service, "error"))  # fmt: skip
        opened = SSE_OPEN(service)
        watcher = asyncio.create_task(watch())
        ACTIVE["streams"] += 1
        opened.inc()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
            await self._stream(write, gone, counters)
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except _ClientGone:
            pass
        finally:
            ACTIVE["streams"] -= 1
            opened.dec()
            watcher.cancel()
            if self._sub is not None:
                DRAIN.wakes.discard(self._sub.wake)
                self.events.hub.remove(self._sub)

    async def _stream(
        self, write: Callable[[bytes], Awaitable[None]], gone: asyncio.Event, counters: tuple[Any, Any, Any, Any]
    ) -> None:
        started = time.monotonic()
        replayed, live, keepalives, errors = counters  # metric children, looked up once per stream
        last = self.last_event_id or 0

        def take(frames: Sequence[Frame], out: list[bytes]) -> bool:
            """Queue frames newer than ``last`` in order; True once the terminal event is among them."""
            nonlocal last
            for frame in frames:
                if frame.seq <= last:
                    continue  # already delivered on this connection (replay/live overlap)
                out.append(encode(frame))
                last = frame.seq
                if frame.event == self.terminal_event:
                    return True
            return False

        preamble = RETRY  # goes out with the replay, in the stream's first body chunk
        last_frame_at = started  # when a frame of the job was last written (``finished_when_idle``)

        async def flush(out: list[bytes], counter: Any) -> None:
            # Frames that arrived together (a stage's ``completed`` + the next ``started``, a replay)
            # go out as one body chunk: one pass through the ASGI send chain and one socket write.
            nonlocal preamble, last_frame_at
            if out or preamble:
                await write(b"".join((preamble, *out)))
                preamble = b""
                if out:
                    last_frame_at = time.monotonic()
                    counter.inc(len(out))
                    out.clear()

        if self._sub is None:  # registered before the backlog is read, so nothing in between is missed
            self._sub = await self.events.attach(self.job_id)
        sub = self._sub
        DRAIN.wakes.add(sub.wake)
        backlog = self._backlog if self._backlog is not None else await self.events.read(self.job_id, last)
        pending: list[bytes] = []
        for frame in self.replay(backlog, self.last_event_id):  # written as the policy made them
            pending.append(encode(frame))
            if frame.event == self.terminal_event:
                await flush(pending, replayed)
                return
        await flush(pending, replayed)
        last = max(last, backlog[-1].seq) if backlog else last

        async def ended() -> bool:
            """Ask ``finished``; if the job is over, write its missing frames and terminal event."""
            assert self.finished is not None
            terminal = await self.finished()
            if terminal is None:
                return False
            # The job is over: replay anything missing, then always end with the terminal
            # event — even for a client that already saw it (docs/api.md SSE step 6).
            if not take(await self.events.read(self.job_id, last), pending):
                pending.append(encode(terminal))
            await flush(pending, replayed)
            return True

        if self.finished is not None and not self.finished_when_idle and await ended():
            return
        ask_when_idle = self.finished is not None and self.finished_when_idle

        loop = asyncio.get_running_loop()
        next_keepalive = time.monotonic() + self.keepalive_seconds
        deadline = started + self.max_seconds
        # One timer per keepalive period wakes the stream (not a timeout armed around every wait).
        timer = loop.call_at(min(next_keepalive, deadline), sub.wake.set)
        try:
            while not gone.is_set():
                sub.wake.clear()
                if DRAIN.draining:
                    await flush(pending, live)
                    await write(error_frame(last, "connection_reset", "서버가 재시작 중이에요. 다시 연결해 주세요."))
                    errors.inc()
                    return
                if sub.overflow:
                    await write(error_frame(last, "temporary", "연결이 잠시 지연되었어요. 다시 연결해 주세요."))
                    errors.inc()
                    return
                done = False
                if sub.resync:
                    sub.resync = False
                    done = take(await self.events.read(self.job_id, last), pending)
                while sub.frames and not done:
                    frame = sub.frames.popleft()
                    if frame.seq > last + 1:
                        # Published before we subscribed, or lost on the way: take the gap from the log.
                        gap = [f for f in await self.events.read(self.job_id, last) if f.seq < frame.seq]
                        done = take(gap, pending)
                        if done:
                            break
                    done = take((frame,), pending)
                await flush(pending, live)
                if done:
                    return
                now = time.monotonic()
                if now >= deadline:
                    await write(error_frame(last, "timeout", "연결 시간이 다 되었어요. 다시 연결해 주세요."))
                    errors.inc()
                    return
                if now >= next_keepalive:
                    # Asked once, when no frame came for a whole keepalive period: a running job's
                    # stages follow each other faster than that, so normally it is never asked.
                    if ask_when_idle and now - last_frame_at >= self.keepalive_seconds:
                        ask_when_idle = False
                        if await ended():
                            return
                    await write(keepalive())
                    keepalives.inc()
                    next_keepalive = now + self.keepalive_seconds
                    timer.cancel()
                    timer = loop.call_at(min(next_keepalive, deadline), sub.wake.set)
                if not sub.wake.is_set():
                    await sub.wake.wait()
        finally:
            timer.cancel()
