"""Info rules: the news feed's pages (filters, keyset cursor, meta) and their in-process cache.

No HTTP and no provider calls here: the feed reads what the refresher (``refresh.py``) stored, so a
provider that is down, slow or talking nonsense never touches a request.

Cache: the first page of every filter combination, and the meta figures (articles per category,
each source's next run), are held in memory until the refresher announces new articles (pub/sub,
``FEED_CHANNEL``) or ``first_page_cache_seconds`` pass. Later pages are read from the database: a
keyset range scan of ``limit + 1`` rows on the index matching the filter, whatever the depth.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.cache import InvalidatedCache
from services.common.clock import iso_ms, utcnow
from services.common.db import Database
from services.common.errors import BadRequest
from services.common.kv import KeyValueStore
from services.info.categories import ARTICLE_CATEGORIES, CATEGORY_NAMES
from services.info.store import FEED_CHANNEL, FeedFilter, Position, category_counts, next_runs, page_rows

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# ``<published-at epoch ms>_<article id>``, or the bare milliseconds (everything published before).
_CURSOR = re.compile(r"^(\d{1,15})(?:_([a-z0-9][a-z0-9-]{0,23}_[0-9a-f]{12}))?$")
_META = "meta"


def categories() -> list[dict[str, str]]:
    return [{"id": key, "name": name} for key, name in CATEGORY_NAMES.items()]


def encode_cursor(published_at: datetime, article_id: str) -> str:
    return f"{(published_at - EPOCH) // timedelta(milliseconds=1)}_{article_id}"


def decode_cursor(raw: str) -> Position:
    match = _CURSOR.fullmatch(raw.strip())
    if match is None or int(match[1]) > MAX_EPOCH_MS:
        raise BadRequest("cursor cannot be decoded", "INVALID_CURSOR")
    return Position(EPOCH + timedelta(milliseconds=int(match[1])), match[2])


@dataclass(frozen=True)
class Meta:
    counts: dict[str, int]  # category → articles; "all" → every article
    next_runs: dict[str, datetime | None]  # source → its next scheduled refresh


def article_body(row: Any) -> dict[str, Any]:
    """A page row (``store.PAGE_COLUMNS``, in the response's key order) as the API's article."""
    body = dict(row._mapping)
    body["published_at"] = iso_ms(row.published_at)
    return body


class NewsFeed:
    def __init__(
        self,
        db: Database,
        kv: KeyValueStore,
        sources: Sequence[str],
        *,
        cache_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.sources = tuple(sources)
        self.clock = clock
        self.cache: InvalidatedCache[Any] = InvalidatedCache(kv, channel=FEED_CHANNEL, ttl=cache_seconds, max_size=512)
        self._meta_load: asyncio.Future[Meta] | None = None

    # ----------------------------------------------------------------------------------- input

    @staticmethod
    def _category(raw: str | None) -> str | None:
        value = (raw or "all").strip().lower()
        if value == "all":
            return None
        if value not in ARTICLE_CATEGORIES:
            raise BadRequest(f"unknown category; use one of {', '.join(CATEGORY_NAMES)}", "INVALID_CATEGORY")
        return value

    def _source(self, raw: str | None) -> str | None:
        value = (raw or "all").strip().lower()
        if value == "all":
            return None
        if value not in self.sources:
            raise BadRequest(f"unknown source; use all or one of: {', '.join(self.sources)}", "INVALID_SOURCE")
        return value

    # ----------------------------------------------------------------------------------- pages

    async def page(
        self, *, category: str | None, source: str | None, cursor: str | None, limit: int, has_image: bool
    ) -> dict[str, Any]:
        feed = FeedFilter(self._category(category), self._source(source), has_image)
        after = decode_cursor(cursor) if cursor else None
        if after is None:
            articles, next_cursor = await self._first_page(feed, limit)
        else:
            articles, next_cursor = await self._load_page(feed, after, limit)
        meta = await self._meta()
        return {
            "articles": articles,
            "next_cursor": next_cursor,
            "has_more": next_cursor is not None,
            "meta": {
                "total_cached": meta.counts.get(feed.category or "all", 0),
                "cache_expires_in": self._expires_in(meta, feed.source),
            },
        }

    async def _first_page(self, feed: FeedFilter, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        key = f"page|{feed.category}|{feed.source}|{feed.has_image}|{limit}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        generation = self.cache.generation
        loaded = await self._load_page(feed, None, limit)
        self.cache.put(key, loaded, generation)
        return loaded

    async def _load_page(
        self, feed: FeedFilter, after: Position | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        async with self.db.sessionmaker() as session:
            rows = await page_rows(session, feed, after, limit)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].published_at, rows[-1].id) if more and rows else None
        return [article_body(row) for row in rows], next_cursor

    # ----------------------------------------------------------------------------------- meta

    async def _meta(self) -> Meta:
        cached = self.cache.get(_META)
        if cached is not None:
            return cached
        if self._meta_load is None or self._meta_load.done():
            # Concurrent misses share one load (right after a refresh every request misses at once).
            self._meta_load = asyncio.ensure_future(self._load_meta(self.cache.generation))
        return await asyncio.shield(self._meta_load)

    async def _load_meta(self, generation: int) -> Meta:
        async with self.db.sessionmaker() as session:
            counts = await category_counts(session)
            runs = await next_runs(session, self.sources)
        meta = Meta({"all": sum(counts.values()), **counts}, runs)
        self.cache.put(_META, meta, generation)
        return meta

    def _expires_in(self, meta: Meta, source: str | None) -> int:
        runs = [meta.next_runs.get(s) for s in ((source,) if source else self.sources)]
        if not runs or any(run is None for run in runs):
            return 0  # never scheduled yet, or due now
        soonest = min(run for run in runs if run is not None)
        return max(0, math.ceil((soonest - self.clock()).total_seconds()))
