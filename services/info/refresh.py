"""Background refresh of the news sources: schedule, backoff, and one refresher per source at a time.

Coordination across replicas is a lease row per source in the service's own database
(``feed_sources``), not a lock in another system:

- **claim**: one ``UPDATE … WHERE id = :source AND lease lapsed [AND next_run_at <= now]
  RETURNING fence`` sets the owner, the lease expiry and ``fence = fence + 1``. The database
  serialises concurrent claims on the row, so exactly one replica gets the new fence; the others
  update nothing and move on.
- **work**: fetch, normalise, look up page images, all bounded in time (well inside the lease).
- **commit**: one transaction that first re-checks ``fence`` (``UPDATE … WHERE fence = :mine``),
  then inserts the articles, prunes and sets the next run. A refresher that stalled past its lease
  (a long GC pause, a frozen VM) finds the fence moved on, writes nothing and rolls back: its late
  writes can never interleave with the next owner's. A crashed refresher's lease simply lapses.

Why not an advisory lock: a session advisory lock lives on one pooled connection (held across the
slow fetch, lost silently with the connection) and has no counterpart in the embedded SQLite mode;
a Redis lock would need a fencing token checked where the data is written anyway. The lease row
gives both — and the schedule itself (``next_run_at``) lives in the same row, so every API replica
reports the same ``cache_expires_in``.

Nothing a provider does reaches the stored articles except new rows: a failure, a garbage answer or
a hang ends the run with a backoff, and pruning (``retention_days``) runs only after a successful
refresh, only over that source's own articles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.cache import ALL
from services.common.clock import utcnow
from services.common.db import Database, upsert
from services.common.kv import KeyValueStore
from services.common.logging import get_logger
from services.common.metrics import NEWS_REFRESH
from services.info.articles import NewsItem, RawArticle, normalize
from services.info.config import InfoSettings
from services.info.models import FeedSource
from services.info.providers import ProviderError, Source
from services.info.store import FEED_CHANNEL, insert_new, known_url_keys, prune
from services.info.thumbnails import PageImages

log = get_logger("eco2.info.refresh")
# Stage callbacks for progress bars: (source id, stage, done, total).
Progress = Callable[[str, str, int, int], None]


class LeaseLost(Exception):
    """Another refresher claimed the source after our lease lapsed: our results are discarded."""


@dataclass
class RunReport:
    source: str
    status: Literal["stored", "failed", "skipped"]  # skipped: not due, or another refresher holds it
    fetched: int = 0
    new: int = 0
    rejected: int = 0
    images: int = 0
    pruned: int = 0
    error: str | None = None
    next_run_at: datetime | None = None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


class Refresher:
    def __init__(
        self,
        db: Database,
        kv: KeyValueStore,
        sources: Sequence[Source],
        settings: InfoSettings,
        page_images: PageImages,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.kv = kv
        self.sources = list(sources)
        self.settings = settings
        self.page_images = page_images
        self.clock = clock
        self.rng = rng
        self.owner = _owner()

    # ----------------------------------------------------------------------------------- schedule

    def _success_delay(self, source: Source) -> float:
        spread = (2 * self.rng() - 1) * self.settings.refresh_jitter
        return source.interval_seconds * (1 + spread)

    def _failure_delay(self, failures: int, retry_after: float | None) -> float:
        s = self.settings
        delay = min(s.backoff_max_seconds, s.backoff_base_seconds * 2 ** max(0, failures - 1))
        delay *= 1 + self.rng() * s.refresh_jitter
        return max(delay, retry_after or 0.0)

    async def ensure_rows(self) -> None:
        """A schedule row for every configured source (due at once when new)."""
        async with self.db.session() as session:
            for source in self.sources:
                values = {"id": source.id, "failures": 0, "fence": 0, "last_new_articles": 0}
                await session.execute(upsert(session, FeedSource).values(values).on_conflict_do_nothing())

    async def seconds_until_due(self) -> float:
        async with self.db.session() as session:
            runs = list(
                await session.scalars(
                    select(FeedSource.next_run_at).where(FeedSource.id.in_([s.id for s in self.sources]))
                )
            )
        now = self.clock()
        if not runs or any(run is None for run in runs):
            return 0.0
        return max(0.0, min((run - now).total_seconds() for run in runs if run is not None))

    # ----------------------------------------------------------------------------------- the lease

    async def _claim(self, source: str, force: bool) -> int | None:
        now = self.clock()
        statement = update(FeedSource).where(
            FeedSource.id == source,
            or_(FeedSource.lease_expires_at.is_(None), FeedSource.lease_expires_at < now),
        )
        if not force:
            statement = statement.where(or_(FeedSource.next_run_at.is_(None), FeedSource.next_run_at <= now))
        statement = statement.values(
            lease_owner=self.owner,
            lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
            fence=FeedSource.fence + 1,
        ).returning(FeedSource.fence)
        async with self.db.session() as session:
            return (await session.execute(statement)).scalar_one_or_none()

    async def _finish(self, session: AsyncSession, source: str, fence: int, **values: object) -> None:
        """Release the lease with ``values`` — only if it is still ours (raises ``LeaseLost``)."""
        result = await session.execute(
            update(FeedSource)
            .where(FeedSource.id == source, FeedSource.fence == fence)
            .values(lease_owner=None, lease_expires_at=None, **values)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise LeaseLost(source)

    # ----------------------------------------------------------------------------------- one run

    async def refresh(self, source: Source, *, force: bool = False, progress: Progress | None = None) -> RunReport:
        """One run of ``source`` if it is due (``force``: now) and nobody else is running it."""
        fence = await self._claim(source.id, force)
        if fence is None:
            return RunReport(source.id, "skipped")
        report = RunReport(source.id, "stored")
        note = progress or (lambda *_: None)
        try:
            note(source.id, "fetching", 0, 1)
            async with asyncio.timeout(self.settings.lease_seconds / 2):
                batch = await source.provider.fetch()
            note(source.id, "fetching", 1, 1)
            items = self._normalize(source, batch.articles, report)
            report.rejected += batch.rejected
            new = [item for item in await self._unseen(items) if not self._expired(source, item.published_at)]
            await self._add_page_images(source, new, report, note)
            await self._store(source, fence, new, report, batch.errors)
        except LeaseLost:
            log.warning("news_refresh_lease_lost", source=source.id)
            return RunReport(source.id, "skipped", error="lease lost to another refresher")
        except Exception as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            await self._fail(source, fence, reason[:500], exc, report)
        await self._announce()
        NEWS_REFRESH(source.id, report.status).inc()
        log.info("news_refresh", **{k: v for k, v in vars(report).items() if k != "next_run_at"})
        return report

    def _expired(self, source: Source, published_at: datetime) -> bool:
        days = self.settings.retention_days
        return bool(days and source.retained and published_at < self.clock() - timedelta(days=days))

    async def _announce(self) -> None:
        """New articles, or at least a new schedule (``cache_expires_in``): API processes reload.
        Best effort: their caches also expire on their own (``first_page_cache_seconds``)."""
        try:
            await self.kv.publish(FEED_CHANNEL, ALL)
        except Exception as exc:
            log.warning("news_feed_announce_failed", error=repr(exc)[:200])

    def _normalize(self, source: Source, raws: Sequence[RawArticle], report: RunReport) -> list[NewsItem]:
        fetched_at = self.clock()
        items: dict[str, NewsItem] = {}
        for raw in raws:
            item = normalize(source.id, raw, fetched_at)
            if item is None:
                report.rejected += 1
            else:
                items.setdefault(item.url_key, item)  # the same URL twice in one answer: first wins
        report.fetched = len(items)
        return list(items.values())

    async def _unseen(self, items: list[NewsItem]) -> list[NewsItem]:
        async with self.db.session() as session:
            known = await known_url_keys(session, (i.url_key for i in items))
        return [item for item in items if item.url_key not in known]

    async def _add_page_images(self, source: Source, new: list[NewsItem], report: RunReport, note: Progress) -> None:
        if not source.provider.fetch_page_images:
            return
        missing = [item for item in new if item.thumbnail_url is None]
        note(source.id, "page images", 0, len(missing))
        images = await self.page_images.many(
            [item.url for item in missing], lambda done: note(source.id, "page images", done, len(missing))
        )
        for item in missing:
            item.thumbnail_url = images.get(item.url)
        report.images = len(images)

    async def _store(
        self, source: Source, fence: int, new: list[NewsItem], report: RunReport, errors: list[str]
    ) -> None:
        now = self.clock()
        report.next_run_at = now + timedelta(seconds=self._success_delay(source))
        async with self.db.session() as session:
            await self._finish(
                session,
                source.id,
                fence,
                next_run_at=report.next_run_at,
                failures=0,
                last_success_at=now,
                last_new_articles=len(new),
                last_error="; ".join(errors)[:500] or None,
                last_error_at=now if errors else None,
            )
            report.new = await insert_new(session, new)
            if self.settings.retention_days and source.retained:
                report.pruned = await prune(session, source.id, now - timedelta(days=self.settings.retention_days))

    async def _fail(self, source: Source, fence: int, reason: str, exc: Exception, report: RunReport) -> None:
        report.status, report.error = "failed", reason
        retry = exc.retry_after if isinstance(exc, ProviderError) else None
        now = self.clock()
        try:
            async with self.db.session() as session:
                failures = 1 + int(
                    await session.scalar(select(FeedSource.failures).where(FeedSource.id == source.id)) or 0
                )
                report.next_run_at = now + timedelta(seconds=self._failure_delay(failures, retry))
                await self._finish(
                    session,
                    source.id,
                    fence,
                    next_run_at=report.next_run_at,
                    failures=failures,
                    last_error=reason,
                    last_error_at=now,
                )
        except LeaseLost:
            log.warning("news_refresh_lease_lost", source=source.id)

    # ----------------------------------------------------------------------------------- the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh each source when it is due until ``stop`` is set (``eco2 worker info-refresh``)."""
        log.info("news_refresher_started", sources=[s.id for s in self.sources], owner=self.owner)
        while not stop.is_set():
            wait = self.settings.poll_seconds
            try:
                await self.ensure_rows()
                for source in self.sources:
                    if stop.is_set():
                        break
                    await self.refresh(source)
                wait = min(wait, max(1.0, await self.seconds_until_due()))
            except Exception as exc:
                log.warning("news_refresher_error", error=repr(exc)[:300])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
