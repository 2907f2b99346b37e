"""The info schema: stored news articles and each source's refresh schedule and lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata

SCHEMA = "info"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("url_key", name="uq_articles_url_key"),  # dedup by URL: the first one stored wins
        # Keyset pages (published_at DESC, id DESC): one index per filter the feed offers, each ending
        # in the sort key, so any page at any depth is an index range scan of ``limit + 1`` rows.
        Index("ix_articles_feed", "published_at", "id"),
        Index("ix_articles_category_feed", "category", "published_at", "id"),
        Index("ix_articles_source_feed", "source", "published_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(32))  # MD5 of the normalised URL
    source: Mapped[str] = mapped_column(String(32))
    source_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    snippet: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)  # millisecond precision (the cursor's)
    thumbnail_url: Mapped[str | None] = mapped_column(Text)
    source_icon_url: Mapped[str | None] = mapped_column(Text)
    video_url: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    keywords: Mapped[list[str] | None] = mapped_column(JSON)
    ai_tag: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class FeedSource(Base):
    """One row per configured source: when it runs next, and who is running it now."""

    __tablename__ = "feed_sources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: due now
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row; drives the backoff
    # The lease: a refresher owns the source until ``lease_expires_at``. ``fence`` grows by one with
    # every claim, and a refresher's writes commit only while it still matches (docs/info.md).
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fence: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_new_articles: Mapped[int] = mapped_column(Integer, default=0)
