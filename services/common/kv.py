"""Key-value store with TTLs: OAuth state, revocation lists, grace-window pairs, sessions, limits.

Real adapter: Redis (shared by every replica). Embedded adapter: a dict in this process, which is
exactly right for ``eco2 dev`` (every service in one process) and for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from services.common.clock import CLOCK
from services.common.logging import get_logger

log = get_logger("eco2.kv")

# Called with each message on a channel, and with ``None`` when the listener (re)attached and may
# have missed messages — a cache must then drop everything it holds.
MessageHandler = Callable[[str | None], None]


if TYPE_CHECKING:  # imported when a Redis URL is configured: embedded runs never load it
    import redis.asyncio as aioredis


class KeyValueStore(ABC):
    @abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abstractmethod
    async def set(self, key: str, value: str, ttl: float | None = None, *, nx: bool = False) -> bool:
        """Store ``value``; with ``nx`` only when the key is absent. Returns whether it was written."""

    @abstractmethod
    async def getdel(self, key: str) -> str | None:
        """Read and delete atomically: the primitive behind single-use values."""

    @abstractmethod
    async def delete(self, *keys: str) -> None: ...

    @abstractmethod
    async def count_existing(self, *keys: str) -> int: ...

    @abstractmethod
    async def incr(self, key: str, ttl: float) -> int:
        """Increment a counter, starting its TTL when the key is created."""

    @abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Seconds left for the key, ``None`` if absent or without expiry."""

    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    async def publish(self, channel: str, message: str) -> None:
        """Broadcast ``message`` to every process listening on ``channel`` (best effort, not stored)."""

    @abstractmethod
    def listen(self, channel: str, handler: MessageHandler) -> Callable[[], None]:
        """Call ``handler`` for each message on ``channel`` until the returned function is called."""

    async def close(self) -> None:
        return None


class MemoryKeyValueStore(KeyValueStore):
    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = asyncio.Lock()
        self._writes = 0
        self._listeners: dict[str, list[MessageHandler]] = {}

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= CLOCK.monotonic():
            del self._data[key]
            return None
        return value

    def _prune(self) -> None:
        # Amortised clean-up so long-running dev processes do not accumulate expired keys.
        self._writes += 1
        if self._writes % 1000:
            return
        now = CLOCK.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float | None = None, *, nx: bool = False) -> bool:
        if nx and self._live(key) is not None:
            return False
        self._data[key] = (value, CLOCK.monotonic() + ttl if ttl else None)
        self._prune()
        return True

    async def getdel(self, key: str) -> str | None:
        value = self._live(key)
        self._data.pop(key, None)
        return value

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def count_existing(self, *keys: str) -> int:
        return sum(1 for key in keys if self._live(key) is not None)

    async def incr(self, key: str, ttl: float) -> int:
        current = self._live(key)
        if current is None:
            self._data[key] = ("1", CLOCK.monotonic() + ttl)
            return 1
        value = int(current) + 1
        self._data[key] = (str(value), self._data[key][1])
        return value

    async def ttl(self, key: str) -> float | None:
        if self._live(key) is None:
            return None
        expires = self._data[key][1]
        return None if expires is None else max(0.0, expires - CLOCK.monotonic())

    async def ping(self) -> None:
        return None

    async def publish(self, channel: str, message: str) -> None:
        # One process: delivering synchronously makes an invalidation visible before publish returns.
        for handler in list(self._listeners.get(channel, ())):
            handler(message)

    def listen(self, channel: str, handler: MessageHandler) -> Callable[[], None]:
        self._listeners.setdefault(channel, []).append(handler)
        return lambda: self._listeners.get(channel, []).remove(handler)


# redis-py's asyncio pool allows 100 connections and *raises* once they are all busy, so a burst of
# more than 100 concurrent requests turned into 500s. A blocking pool waits for a free connection.
REDIS_POOL_SIZE = 512
REDIS_POOL_WAIT_SECONDS = 5.0


def redis_client(url: str, **options: Any) -> aioredis.Redis:
    import redis.asyncio as aioredis

    """A client whose pool waits (briefly) for a free connection instead of failing under bursts."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=REDIS_POOL_SIZE, timeout=REDIS_POOL_WAIT_SECONDS, decode_responses=True, **options
    )
    return aioredis.Redis(connection_pool=pool)


class RedisKeyValueStore(KeyValueStore):
    def __init__(self, url: str, prefix: str = "eco2:") -> None:
        self.client: aioredis.Redis = redis_client(
            url, health_check_interval=30, socket_timeout=5, socket_connect_timeout=3
        )
        self.prefix = prefix
        self._listeners: dict[asyncio.Task[None], asyncio.Event] = {}

    def k(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> str | None:
        return cast(str | None, await self.client.get(self.k(key)))

    async def set(self, key: str, value: str, ttl: float | None = None, *, nx: bool = False) -> bool:
        px = int(ttl * 1000) if ttl else None
        return bool(await self.client.set(self.k(key), value, px=px, nx=nx))

    async def getdel(self, key: str) -> str | None:
        return cast(str | None, await self.client.getdel(self.k(key)))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.client.delete(*(self.k(key) for key in keys))

    async def count_existing(self, *keys: str) -> int:
        return int(await self.client.exists(*(self.k(key) for key in keys))) if keys else 0

    async def incr(self, key: str, ttl: float) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(self.k(key))
            pipe.pexpire(self.k(key), int(ttl * 1000), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def ttl(self, key: str) -> float | None:
        millis = await self.client.pttl(self.k(key))
        return None if millis is None or millis < 0 else millis / 1000

    async def ping(self) -> None:
        await self.client.ping()

    async def publish(self, channel: str, message: str) -> None:
        await self.client.publish(self.k(channel), message)

    def listen(self, channel: str, handler: MessageHandler) -> Callable[[], None]:
        stopped = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._listen(self.k(channel), handler, stopped))
        self._listeners[task] = stopped
        task.add_done_callback(lambda done: self._listeners.pop(done, None))
        return stopped.set

    async def _listen(self, channel: str, handler: MessageHandler, stopped: asyncio.Event) -> None:
        # Stopped by a flag checked between short reads, never by cancelling a read: cancelling
        # redis-py in the middle of a pub/sub read can leave the task hanging.
        while not stopped.is_set():
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel)
                while not stopped.is_set():
                    message = await pubsub.get_message(timeout=0.25)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        handler(None)  # (re)attached: whatever was published meanwhile is lost to us
                    elif message["type"] == "message":
                        handler(str(message["data"]))
            except Exception as exc:
                log.warning("kv_listen_failed", channel=channel, error=repr(exc))
                handler(None)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        for stopped in self._listeners.values():
            stopped.set()
        if self._listeners:
            _, pending = await asyncio.wait(list(self._listeners), timeout=2.0)
            for task in pending:
                task.cancel()
        await self.client.aclose()


_shared_memory_store: MemoryKeyValueStore | None = None


def create_kv(redis_url: str | None, prefix: str) -> KeyValueStore:
    """Redis when configured; otherwise one in-process store shared by every service in this process."""
    global _shared_memory_store
    if redis_url:
        return RedisKeyValueStore(redis_url, prefix)
    if _shared_memory_store is None:
        _shared_memory_store = MemoryKeyValueStore()
    return _shared_memory_store
