"""Rate limits: N per rolling window plus M per calendar day in a time zone (docs/api.md, rate
limits), keyed per user, and ``Throttle`` — per client address and global — for unauthenticated
endpoints (login starts, callbacks, refresh).

A kernel port because every job-submitting endpoint has one (scan submit, chat send — each with its
own limits and key namespace); it guards the endpoint, not the job machinery in ``services.common.jobs``.

``hit`` checks both limits and consumes one unit only when both allow it, so a refused request costs
nothing; ``enforce`` turns a refusal into the documented 429 ``RATE_LIMITED`` with ``Retry-After``.
Real adapter: one Lua script on Redis (a sorted set of hit times + a per-day counter), atomic across
replicas. Embedded adapter: the same bookkeeping in this process.
"""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from services.common.config import CommonSettings
from services.common.errors import RateLimited
from services.common.kv import redis_client
from services.common.metrics import RATE_LIMIT_REFUSALS

if TYPE_CHECKING:  # imported when a Redis URL is configured: embedded runs never load it
    import redis.asyncio as aioredis


@dataclass(frozen=True)
class RateLimit:
    per_window: int
    window_seconds: float
    per_day: int
    timezone: str = "Asia/Seoul"

    def day(self, now: float) -> tuple[str, float]:
        """The calendar day of ``now`` in the limit's zone, and seconds until it ends."""
        local = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return local.strftime("%Y%m%d"), (midnight - local).total_seconds()


class RateLimiter(ABC):
    name = "limit"  # set by ``create_rate_limiter``: the metrics' ``limiter`` label

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit

    @abstractmethod
    async def hit(self, key: str, now: float | None = None) -> float | None:
        """Consume one unit for ``key``: ``None`` when allowed, else seconds until a retry would pass."""

    async def enforce(self, key: str) -> None:
        """Consume one unit for ``key`` or raise 429 ``RATE_LIMITED`` with the seconds to wait."""
        retry_after = await self.hit(key)
        if retry_after is not None:
            RATE_LIMIT_REFUSALS(self.name).inc()
            raise RateLimited(math.ceil(retry_after))

    async def close(self) -> None:
        return None


class MemoryRateLimiter(RateLimiter):
    PRUNE_EVERY = 1000

    def __init__(self, limit: RateLimit) -> None:
        super().__init__(limit)
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._days: dict[tuple[str, str], int] = defaultdict(int)
        self._calls = 0

    def _prune(self, now: float) -> None:
        """Forget keys with no hit in the window and past days: keyed by client address, the maps
        would otherwise grow with every address ever seen."""
        horizon = now - self.limit.window_seconds
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[key]
        today, _ = self.limit.day(now)
        for day_key in [k for k in self._days if k[1] != today]:
            del self._days[day_key]

    async def hit(self, key: str, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        self._calls += 1
        if self._calls % self.PRUNE_EVERY == 0:
            self._prune(now)
        hits = self._hits[key]
        while hits and hits[0] <= now - self.limit.window_seconds:
            hits.popleft()
        if len(hits) >= self.limit.per_window:
            return hits[len(hits) - self.limit.per_window] + self.limit.window_seconds - now
        day, left = self.limit.day(now)
        if self._days[(key, day)] >= self.limit.per_day:
            return left
        hits.append(now)
        self._days[(key, day)] += 1
        return None


_HIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local per_window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= per_window then
  local oldest = redis.call('ZRANGE', KEYS[1], n - per_window, n - per_window, 'WITHSCORES')
  return {1, tostring(tonumber(oldest[2]) + window - now)}
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[4]) then
  return {2, ARGV[5]}
end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], math.ceil(window))
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 90000000)
return {0, '0'}
"""


class RedisRateLimiter(RateLimiter):
    def __init__(self, url: str, prefix: str, name: str, limit: RateLimit) -> None:
        super().__init__(limit)
        self.client: aioredis.Redis = redis_client(url, socket_connect_timeout=3)
        self.prefix = f"{prefix}ratelimit:{name}:"
        self._script = self.client.register_script(_HIT)

    async def hit(self, key: str, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        day, left = self.limit.day(now)
        now_ms = now * 1000
        verdict, wait_ms = await self._script(
            keys=[f"{self.prefix}{key}:w", f"{self.prefix}{key}:d:{day}"],
            args=[
                now_ms,
                self.limit.window_seconds * 1000,
                self.limit.per_window,
                self.limit.per_day,
                left * 1000,
                f"{now_ms}:{uuid.uuid4().hex[:8]}",
            ],
        )
        return None if int(verdict) == 0 else float(wait_ms) / 1000

    async def close(self) -> None:
        await self.client.aclose()


def create_rate_limiter(common: CommonSettings, name: str, limit: RateLimit) -> RateLimiter:
    limiter: RateLimiter
    if common.redis_url:
        limiter = RedisRateLimiter(common.redis_url, common.redis_key_prefix, name, limit)
    else:
        limiter = MemoryRateLimiter(limit)
    limiter.name = name
    return limiter


NO_DAILY_CAP = 10**12


def address_key(host: str | None) -> str:
    """The throttling key of a client address: IPv4 as is, IPv6 by its /64 (one subscriber's
    network hands out a whole /64, so single addresses would be free to rotate)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address) + "/64"
    return str(address)


class Throttle:
    """Unauthenticated requests of one kind, limited per client address and over all addresses.

    The address limit is consumed first, so one address cannot spend the global budget past its
    own share. A refusal raises ``RateLimited`` (429 with an integer ``Retry-After``).
    """

    def __init__(self, common: CommonSettings, name: str, per_address: int, overall: int, window: float) -> None:
        self.name = name
        self.per_address = create_rate_limiter(common, f"{name}:address", RateLimit(per_address, window, NO_DAILY_CAP))
        self.overall = create_rate_limiter(common, f"{name}:all", RateLimit(overall, window, NO_DAILY_CAP))

    async def check(self, host: str | None) -> None:
        wait = await self.per_address.hit(address_key(host))
        if wait is None:
            wait = await self.overall.hit("all")
        if wait is not None:
            RATE_LIMIT_REFUSALS(self.name).inc()
            raise RateLimited(math.ceil(wait), "too many requests; retry later")

    async def close(self) -> None:
        await self.per_address.close()
        await self.overall.close()
