"""Values held in this process's memory, invalidated on every write in every process.

Hot reads (``GET /users/me`` profiles, the first page of the news feed) are served from memory so
the database stays out of the request. Freshness:

- the process that writes (PATCH, an event consumer) drops the entry after its commit, before it
  answers, so a user's own write is visible to their next read on that process at once;
- every write is also broadcast on the key-value store's pub/sub channel; other processes drop the
  entry when the message arrives (sub-millisecond on one network), and drop *everything* whenever
  their listener (re)attaches, because messages may have been missed meanwhile;
- entries also expire after ``ttl`` seconds, a backstop should a message ever be lost unnoticed;
- a load that started before an invalidation is not stored (the generation check), so a slow read
  can never put an older row back after a newer write was announced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.common.kv import KeyValueStore

ALL = "*"  # the key that drops every entry

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float


class InvalidatedCache(Generic[V]):
    def __init__(self, kv: KeyValueStore, *, channel: str, ttl: float, max_size: int) -> None:
        self.kv = kv
        self.ttl = ttl
        self.max_size = max_size
        self.channel = channel
        self.generation = 0
        self._entries: dict[str, _Entry[V]] = {}
        self._stop_listening: Callable[[], None] | None = None

    def start(self) -> None:
        """Begin applying invalidations broadcast by other processes (call inside the event loop)."""
        if self._stop_listening is None:
            self._stop_listening = self.kv.listen(self.channel, self._on_message)

    def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None

    async def aclose(self) -> None:
        """``stop`` as a closer (``runtime.on_close(cache.aclose)``)."""
        self.stop()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry.value

    def put(self, key: str, value: V, seen_generation: int) -> None:
        """Store ``value`` loaded when ``generation`` was ``seen_generation``; ignored if anything was
        invalidated since, because the load may predate that write."""
        if seen_generation != self.generation:
            return
        if len(self._entries) >= self.max_size:
            self._entries.clear()  # rare (size is generous); cheaper than tracking recency per hit
        self._entries[key] = _Entry(value, time.monotonic() + self.ttl)

    def drop(self, key: str) -> None:
        self.generation += 1
        if key == ALL:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    async def invalidate(self, key: str) -> None:
        """Drop ``key`` here now and in every other process (call after the write committed)."""
        self.drop(key)
        await self.kv.publish(self.channel, key)

    def _on_message(self, message: str | None) -> None:
        self.drop(ALL if message is None else message)
