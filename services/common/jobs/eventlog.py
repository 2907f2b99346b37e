"""The per-job event log behind the SSE streams (scan, chat).

Each job has an ordered log of events numbered 1, 2, 3… (``seq``). Real adapter: a Redis
Stream per job whose entry ids *are* the seqs (``<seq>-1``), written by one Lua script that also
bumps the counter, refreshes the TTL and publishes the frame on one pub/sub channel, so an append is
one round trip and a reader can resume with ``XRANGE (seq``. Embedded adapter: lists in this process.

Live delivery is fanned out per process, not per connection: one pub/sub connection (or the
in-process append itself) feeds a ``Hub`` that wakes the local subscribers of that job. A stream
costs a small object and a wake-up event, not a Redis connection — that is what lets one process hold
thousands of open SSE streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # the real adapter's client is imported when used: embedded runs never load it
    import redis.asyncio as aioredis

from services.common.clock import iso_ms, utcnow
from services.common.config import CommonSettings
from services.common.jobs.observe import JobObserver
from services.common.kv import redis_client
from services.common.logging import get_logger

log = get_logger("eco2.jobs")

# Frames a subscriber may have waiting before it counts as too slow (docs/api.md, SSE: slow subscribers).
MAX_PENDING_FRAMES = 256
TERMINAL_EVENT = "done"  # the last event of every job, scan or chat


@dataclass(slots=True, frozen=True)
class Frame:
    seq: int
    event: str
    data: str  # the JSON object sent as ``data:``; it already holds ``"seq"``


def event_data(job_id: str, stage: str, status: str, progress: int, result: Any = None,
               message: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """The data of a job event (docs/api.md, SSE event data) without ``seq``, which the log assigns."""
    data: dict[str, Any] = {
        "job_id": job_id,
        "stage": stage,
        "status": status,
        "ts": iso_ms(utcnow()),
        "progress": progress,
        "result": result,
    }
    if message is not None:
        data["message"] = message
    return data | extra


def _with_seq(seq: int, data: dict[str, Any]) -> str:
    return orjson.dumps({"seq": seq, **data}).decode()


class Subscription:
    """One reader's inbox of live frames for one job."""

    __slots__ = ("frames", "job_id", "overflow", "resync", "wake")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.frames: deque[Frame] = deque()
        self.wake = asyncio.Event()
        self.resync = False  # frames may have been lost (reconnect): re-read the log
        self.overflow = False

    def push(self, frame: Frame) -> None:
        if len(self.frames) >= MAX_PENDING_FRAMES:
            self.overflow = True
        else:
            self.frames.append(frame)
        self.wake.set()


class Hub:
    """Local subscribers by job id."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def add(self, sub: Subscription) -> None:
        self._subs[sub.job_id].add(sub)

    def remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.job_id]

    def dispatch(self, job_id: str, frame: Frame) -> None:
        for sub in self._subs.get(job_id, ()):
            sub.push(frame)

    def resync_all(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.resync = True
                sub.wake.set()

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._subs.values())


class JobEventLog(ABC):
    """Ordered per-job events with live subscription."""

    def __init__(self, retention_seconds: float) -> None:
        self.retention_seconds = retention_seconds
        self.hub = Hub()
        self.observer = JobObserver("jobs")  # metrics from the appends; ``create_job_log`` names the service

    async def append(self, job_id: str, event: str, data: dict[str, Any], *, owner: str | None = None) -> int:
        """Store the next event of the job; returns its seq. ``data`` must not hold ``seq``.

        ``owner`` (with the job's first event): the id of the user the job belongs to, kept beside the
        log for as long as the log (``owner``), so that reads can check ownership without the database."""
        return (await self.append_many(job_id, [(event, data)], owner=owner))[0]

    @abstractmethod
    async def append_many(
        self, job_id: str, events: Sequence[tuple[str, dict[str, Any]]], *, owner: str | None = None
    ) -> list[int]:
        """Store several consecutive events of one job, in order; returns their seqs.

        The real adapter does it in one round trip (a worker finishing a stage and starting the next
        writes ``completed`` + ``started`` together). Each event is still stored before it is published."""

    @abstractmethod
    async def read(self, job_id: str, after: int = 0) -> list[Frame]:
        """Events with ``seq > after``, in order."""

    @abstractmethod
    async def owner_and_last(self, job_id: str) -> tuple[str | None, Frame | None]:
        """The owner stored with the job's first event (``None``: not stored, or gone with the log —
        expired, erased, Redis restarted) and the log's last event. A hint only: a caller that gets
        ``None`` or a different owner asks the job's database, which stays the authority."""

    async def owner(self, job_id: str) -> str | None:
        return (await self.owner_and_last(job_id))[0]

    async def owner_and_backlog(self, job_id: str, after: int = 0) -> tuple[str | None, list[Frame], Frame | None]:
        """What a stream opens with: the owner (as ``owner_and_last``), the events with ``seq > after``
        and the log's last event. The real adapter reads them in one round trip; a stream that will
        use the backlog must have subscribed (``attach``) before."""
        owner, last = await self.owner_and_last(job_id)
        backlog = await self.read(job_id, after)
        return owner, backlog, backlog[-1] if backlog else last

    @abstractmethod
    async def delete(self, job_id: str) -> None: ...

    async def ensure_listening(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """Register *before* reading the backlog so nothing produced in between is missed."""
        sub = await self.attach(job_id)
        try:
            yield sub
        finally:
            self.hub.remove(sub)

    async def attach(self, job_id: str) -> Subscription:
        """``subscribe`` without the block: the caller removes it (``hub.remove``) when done."""
        await self.ensure_listening()
        sub = Subscription(job_id)
        self.hub.add(sub)
        return sub

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryJobEventLog(JobEventLog):
    def __init__(self, retention_seconds: float) -> None:
        super().__init__(retention_seconds)
        self._logs: dict[str, list[Frame]] = {}
        self._touched: dict[str, float] = {}
        self._owners: dict[str, str] = {}
        self._appends = 0

    async def append_many(
        self, job_id: str, events: Sequence[tuple[str, dict[str, Any]]], *, owner: str | None = None
    ) -> list[int]:
        if owner is not None and events and events[0][0] == FIRST_EVENT:
            self._owners.setdefault(job_id, owner)  # written once, never replaced (as SET NX)
        return [self._append(job_id, event, data) for event, data in events]

    def _append(self, job_id: str, event: str, data: dict[str, Any]) -> int:
        self.observer.appended(job_id, event, data)
        frames = self._logs.setdefault(job_id, [])
        seq = len(frames) + 1
        frame = Frame(seq, event, _with_seq(seq, data))
        frames.append(frame)
        self._touched[job_id] = time.monotonic()
        self.hub.dispatch(job_id, frame)
        self._appends += 1
        if self._appends % 1000 == 0:
            self._prune()
        return seq

    def _prune(self) -> None:
        cutoff = time.monotonic() - self.retention_seconds
        for job_id in [j for j, t in self._touched.items() if t < cutoff]:
            self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        self._logs.pop(job_id, None)
        self._touched.pop(job_id, None)
        self._owners.pop(job_id, None)

    async def read(self, job_id: str, after: int = 0) -> list[Frame]:
        return list(self._logs.get(job_id, ())[max(0, after) :])

    async def owner_and_last(self, job_id: str) -> tuple[str | None, Frame | None]:
        touched = self._touched.get(job_id)
        # Pruned only every 1000 appends: a log older than the retention counts as gone already (as the TTL does).
        if touched is None or touched < time.monotonic() - self.retention_seconds:
            return None, None
        frames = self._logs.get(job_id)
        return self._owners.get(job_id), frames[-1] if frames else None

    async def delete(self, job_id: str) -> None:
        self._forget(job_id)


# One script = one round trip for one or more consecutive events of a job: counter, stream entry with
# id <seq>-1 per event, then one live notification for them all (after every entry is stored: one
# pub/sub message per batch, not per event, is what each listening process pays for — ≈ 30 µs of
# redis-py per message), then the TTLs. KEYS: log, counter, live channel, owner.
# ARGV: TTL ms, job id, first-event flag, owner ('' for none), then (event, JSON body without seq) pairs.
#
# The owner (a user id) is written with the first event and expires with the log; every append
# refreshes both TTLs (PEXPIRE of a missing owner key does nothing: a log re-created after a loss
# has no owner, and its readers fall back to the database).
#
# A job's log starts with its ``queued`` event (ARGV[3] = '1'). Any later event that finds no counter
# means the log was lost (Redis flushed, or failed over to an empty replica) while the job ran: the
# job itself is safe in PostgreSQL, but numbering from 1 again would break "seq strictly increasing"
# (docs/api.md, SSE event data) and leave a resuming client waiting for seqs it believes it has seen. The counter
# then continues from the server clock in microseconds — above any count a job can reach — so seqs
# keep increasing and every reader, connected or resuming, is handed the frames written since.
# (``%d``: Lua numbers print in exponent form past 14 digits.)
_APPEND = """
local seqs, lines = {}, {}
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[1], 'NX')  -- written once, never replaced
end
for i = 5, #ARGV, 2 do
  local seq
  if i == 5 and ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[2]) == 0 then
    local now = redis.call('TIME')
    seq = string.format('%d', tonumber(now[1]) * 1000000 + tonumber(now[2]))
    redis.call('SET', KEYS[2], seq)
  else
    seq = string.format('%d', redis.call('INCR', KEYS[2]))
  end
  local data = '{"seq":' .. seq .. ',' .. string.sub(ARGV[i + 1], 2)
  redis.call('XADD', KEYS[1], seq .. '-1', 'e', ARGV[i], 'd', data)
  lines[#lines + 1] = ARGV[2] .. '|' .. seq .. '|' .. ARGV[i] .. '|' .. data
  seqs[#seqs + 1] = seq
end
redis.call('PUBLISH', KEYS[3], table.concat(lines, '\\n'))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[1])
return seqs
"""
# The owner and the last entry of a log, in one round trip ('' when there is no owner: a Lua nil
# would end the returned array early).
_OWNER_AND_LAST = """
return {redis.call('GET', KEYS[2]) or '', redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)}
"""
# A stream's opening read, in one round trip: the owner, the entries after the resume point (ARGV[1],
# an XRANGE start) and, only when there are none, the log's last entry.
_OWNER_AND_BACKLOG = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
local last = {}
if #entries == 0 then
  last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
end
return {redis.call('GET', KEYS[2]) or '', entries, last}
"""
FIRST_EVENT = "queued"  # every job's first event (docs/api.md, SSE events: scan and chat)


class RedisJobEventLog(JobEventLog):
    def __init__(self, url: str, prefix: str, namespace: str, retention_seconds: float) -> None:
        super().__init__(retention_seconds)
        self.client: aioredis.Redis = redis_client(url, health_check_interval=30, socket_connect_timeout=3)
        self.prefix = f"{prefix}jobs:{namespace}:"
        self.channel = f"{self.prefix}live"
        self._append = self.client.register_script(_APPEND)
        self._owner_and_last = self.client.register_script(_OWNER_AND_LAST)
        self._owner_and_backlog = self.client.register_script(_OWNER_AND_BACKLOG)
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def _keys(self, job_id: str) -> list[str]:
        """The log, its counter, the live channel, the owner."""
        return [f"{self.prefix}{job_id}", f"{self.prefix}{job_id}:seq", self.channel, f"{self.prefix}{job_id}:owner"]

    async def append_many(
        self, job_id: str, events: Sequence[tuple[str, dict[str, Any]]], *, owner: str | None = None
    ) -> list[int]:
        if not events:
            return []
        for event, data in events:
            self.observer.appended(job_id, event, data)
        first = "1" if events[0][0] == FIRST_EVENT else "0"
        stored_owner = owner if owner is not None and first == "1" else ""
        args: list[str | int | bytes] = [int(self.retention_seconds * 1000), job_id, first, stored_owner]
        for event, data in events:
            args += (event, orjson.dumps(data))  # compact UTF-8 JSON, as bytes the client sends as they are
        seqs: Any = await self._append(keys=self._keys(job_id), args=args)
        return [int(seq) for seq in seqs]

    async def read(self, job_id: str, after: int = 0) -> list[Frame]:
        entries: Any = await self.client.xrange(self._keys(job_id)[0], min=f"{max(0, after) + 1}-0", max="+")
        return [Frame(int(str(entry_id).split("-")[0]), str(f["e"]), str(f["d"])) for entry_id, f in entries or ()]

    async def owner_and_last(self, job_id: str) -> tuple[str | None, Frame | None]:
        log_key, _, _, owner_key = self._keys(job_id)
        owner, entries = await self._owner_and_last(keys=[log_key, owner_key])
        return (str(owner) or None), (_script_frame(entries[0]) if entries else None)

    async def owner_and_backlog(self, job_id: str, after: int = 0) -> tuple[str | None, list[Frame], Frame | None]:
        log_key, _, _, owner_key = self._keys(job_id)
        owner, entries, last = await self._owner_and_backlog(keys=[log_key, owner_key], args=[f"{max(0, after) + 1}-0"])
        backlog = [_script_frame(entry) for entry in entries]
        return (str(owner) or None), backlog, backlog[-1] if backlog else (_script_frame(last[0]) if last else None)

    async def delete(self, job_id: str) -> None:
        log_key, counter, _, owner_key = self._keys(job_id)
        await self.client.delete(log_key, counter, owner_key)

    async def ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._listening.clear()
            self._listener = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._listening.wait(), timeout=5)

    async def _listen(self) -> None:
        failures = 0
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if failures:
                    self.hub.resync_all()  # anything published while we were away is in the log
                failures = 0
                self._listening.set()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    # One line per event of an append (``_APPEND``): ``job|seq|event|data``; the data is
                    # compact JSON, which has no raw newline.
                    for line in str(message["data"]).split("\n"):
                        job_id, seq, event, data = line.split("|", 3)
                        self.hub.dispatch(job_id, Frame(int(seq), event, data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("job_events_listener_failed", error=repr(exc), failures=failures)
                self.hub.resync_all()
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self.client.aclose()


def _script_frame(entry: Any) -> Frame:
    entry_id, fields = entry
    values = dict(zip(fields[::2], fields[1::2], strict=True))  # a script returns the flat field list
    return Frame(int(str(entry_id).split("-")[0]), str(values["e"]), str(values["d"]))


_memory_logs: dict[str, MemoryJobEventLog] = {}


def create_job_log(common: CommonSettings, namespace: str, retention_seconds: float) -> JobEventLog:
    """Redis Streams when configured; otherwise one in-process log per namespace, shared in the process."""
    if common.redis_url:
        events: JobEventLog = RedisJobEventLog(common.redis_url, common.redis_key_prefix, namespace, retention_seconds)
    else:
        if namespace not in _memory_logs:
            _memory_logs[namespace] = MemoryJobEventLog(retention_seconds)
        events = _memory_logs[namespace]
    events.observer.service = namespace  # the job service's name (scan, chat): the metrics' ``service`` label
    return events
