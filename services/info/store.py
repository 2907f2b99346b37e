"""Queries over the stored articles: what is new, inserting it, pruning, keyset pages, counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import UtcDateTime, upsert
from services.info.articles import NewsItem
from services.info.models import Article, FeedSource

FEED_CHANNEL = "info:feed-changed"  # announced after each refresh; API processes drop their cached pages
INSERT_CHUNK = 200  # rows per INSERT (SQLite's bound-parameter limit, with room to spare)
PAGE_COLUMNS = (
    Article.id,
    Article.title,
    Article.url,
    Article.snippet,
    Article.source,
    Article.source_name,
    Article.published_at,
    Article.thumbnail_url,
    Article.category,
    Article.source_icon_url,
    Article.video_url,
    Article.keywords,
    Article.ai_tag,
)


@dataclass(frozen=True)
class FeedFilter:
    category: str | None = None  # None: every category
    source: str | None = None  # None: every source
    has_image: bool = False


@dataclass(frozen=True)
class Position:
    """A keyset position: pages continue with what sorts after it (older, then smaller id)."""

    published_at: datetime
    article_id: str | None = None  # None: everything published before ``published_at``


async def known_url_keys(session: AsyncSession, keys: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), INSERT_CHUNK):
        chunk = wanted[start : start + INSERT_CHUNK]
        found.update(await session.scalars(select(Article.url_key).where(Article.url_key.in_(chunk))))
    return found


async def insert_new(session: AsyncSession, items: Sequence[NewsItem]) -> int:
    """Insert ``items``; one whose URL (or id) is already stored is skipped, so the first stored wins."""
    inserted = 0
    for start in range(0, len(items), INSERT_CHUNK):
        rows = [asdict(item) for item in items[start : start + INSERT_CHUNK]]
        statement = upsert(session, Article).values(rows).on_conflict_do_nothing().returning(Article.id)
        inserted += len((await session.execute(statement)).all())
    return inserted


async def prune(session: AsyncSession, source: str, published_before: datetime) -> int:
    result = await session.execute(
        delete(Article).where(Article.source == source, Article.published_at < published_before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _after(position: Position) -> Any:
    at = bindparam(None, position.published_at, type_=UtcDateTime())
    if position.article_id is None:
        return Article.published_at < at
    return tuple_(Article.published_at, Article.id) < tuple_(at, bindparam(None, position.article_id))


async def page_rows(session: AsyncSession, feed: FeedFilter, after: Position | None, limit: int) -> Sequence[Any]:
    """``limit + 1`` rows in feed order after ``after`` (the extra row says whether more follow)."""
    conditions = []
    if feed.category:
        conditions.append(Article.category == feed.category)
    if feed.source:
        conditions.append(Article.source == feed.source)
    if feed.has_image:
        conditions.append(Article.thumbnail_url.is_not(None))
    if after is not None:
        conditions.append(_after(after))
    statement = (
        select(*PAGE_COLUMNS)
        .where(and_(True, *conditions))
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(limit + 1)
    )
    return (await session.execute(statement)).all()


async def category_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Article.category, func.count()).group_by(Article.category))
    return {str(category): int(count) for category, count in rows.all()}


async def next_runs(session: AsyncSession, sources: Iterable[str]) -> dict[str, datetime | None]:
    wanted = list(sources)
    rows = await session.execute(select(FeedSource.id, FeedSource.next_run_at).where(FeedSource.id.in_(wanted)))
    return {str(source): next_run for source, next_run in rows.all()}
