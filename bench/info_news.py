"""Benchmark of the news feed (``GET /api/v1/info/news``) on PostgreSQL with 100,000 stored articles.

1. Creates its own database, migrates the info schema, writes ``--rows`` synthetic articles (three
   sources: naver 60 %, newsdata 39 %, one RSS feed 1 %; categories 60/25/15 %; 80 % with a
   thumbnail; publication times spread over 30 days with collisions to exercise the id tie-break).
2. For each filter (none, ``category=ai``, ``source=<rare feed>``, ``has_image=true``) and each page
   depth (first page, 2nd, 100th, 5,000th, last), measures the server side two ways: the service call
   (query + building the page) and the whole request inside the ASGI app, from arrival to last byte
   (routing, validation, service, orjson rendering; ``asgi_timer.py``), p50/p99 over ``--requests``
   calls. The first page is served from the in-process cache, the others are keyset range scans.
3. Runs the same deepest page with ``OFFSET`` (what keyset paging avoids) for comparison.
4. Drops the database.

Usage: ``uv run python bench/info_news.py [--rows 100000] [--requests 300]``
(PostgreSQL at ECO2_BENCH_PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from bench.asgi_timer import ServerTimer
from bench.pgbench import bench_database, percentile, timed
from services.common.config import CommonSettings, Environment
from services.common.db import Database
from services.common.kv import MemoryKeyValueStore
from services.common.migrations import upgrade
from services.info.app import create_app
from services.info.config import InfoSettings
from services.info.models import SCHEMA
from services.info.service import NewsFeed, encode_cursor
from tests.support.clients import app_client

SOURCES = (("naver", 0.60), ("newsdata", 0.39), ("rarefeed", 0.01))
CATEGORIES = (("environment", 0.60), ("energy", 0.25), ("ai", 0.15))
FILTERS: dict[str, dict[str, Any]] = {
    "all": {},
    "category=ai": {"category": "ai"},
    "source=rarefeed": {"source": "rarefeed"},
    "has_image": {"has_image": True},
}
DEPTHS = (1, 2, 100, 5000, "last")
LIMIT = 10


def records(rows: int, seed: int = 5) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for n in range(rows):
        source = rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0]
        category = rng.choices([c for c, _ in CATEGORIES], [w for _, w in CATEGORIES])[0]
        url = f"https://news{n % 97}.example.com/{source}/{n}"
        key = hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()
        # Whole minutes over 30 days: ~2.3 articles per minute, so equal timestamps are common.
        published = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
        image = f"https://img.example.com/{n}.jpg" if rng.random() < 0.8 else None
        out.append((
            f"{source}_{key[:12]}", url, key, source, f"news{n % 97}.example.com", f"기사 제목 {n} 재활용 분리배출",
            "기사 요약 " * 12, published, image, None, None, category, '["재활용", "분리배출"]', None, published,
        ))  # fmt: skip
    return out


async def load(dsn: str, rows: int) -> None:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "articles",
            schema_name=SCHEMA,
            records=records(rows),
            columns=[
                "id", "url", "url_key", "source", "source_name", "title", "snippet", "published_at", "thumbnail_url",
                "source_icon_url", "video_url", "category", "keywords", "ai_tag", "fetched_at",
            ],
        )  # fmt: skip
        await conn.execute(f"ANALYZE {SCHEMA}.articles")
    finally:
        await conn.close()
    print(f"stored {rows:,} articles in {time.perf_counter() - started:.1f}s")


async def cursor_at(db: Database, where: str, page: int | str) -> str | None:
    """The cursor that asks for page ``page`` (1-based; "last") of the filtered feed."""
    async with db.session() as session:
        total = int(await session.scalar(text(f"SELECT count(*) FROM {SCHEMA}.articles WHERE {where}")) or 0)
        last = (total - 1) // LIMIT
        index = last if page == "last" else min(int(page) - 1, last)  # a short filter has fewer pages
        if index == 0:
            return None
        row = (
            await session.execute(
                text(
                    f"SELECT published_at, id FROM {SCHEMA}.articles WHERE {where} "
                    "ORDER BY published_at DESC, id DESC OFFSET :skip LIMIT 1"
                ),
                {"skip": index * LIMIT - 1},
            )
        ).one()
    return encode_cursor(row.published_at, row.id)


SQL_FILTERS = {
    "all": "TRUE",
    "category=ai": "category = 'ai'",
    "source=rarefeed": "source = 'rarefeed'",
    "has_image": "thumbnail_url IS NOT NULL",
}


async def measure(url: str, common: CommonSettings, requests: int) -> None:
    db = Database(url, SCHEMA)
    settings = InfoSettings(
        environment="test",
        naver_client_id="x",
        naver_client_secret="x",
        newsdata_api_key="x",
        rss_feeds=[{"id": "rarefeed", "url": "https://rare.example.com/rss"}],
    )
    feed = NewsFeed(db, MemoryKeyValueStore(), ("naver", "newsdata", "rarefeed"), cache_seconds=60)
    print(f"\n{'filter':<17}{'page':>6}{'service p50':>13}{'p99':>8}{'server p50':>12}{'p99':>8}{'cpu p99':>10}")
    timer = ServerTimer(create_app(common=common, settings=settings))
    async with app_client(timer) as client:  # type: ignore[arg-type]
        for label, params in FILTERS.items():
            for depth in DEPTHS:
                cursor = await cursor_at(db, SQL_FILTERS[label], depth)
                query: dict[str, Any] = {"limit": LIMIT, **params} | ({"cursor": cursor} if cursor else {})

                async def service_call(query: dict[str, Any] = query) -> None:
                    page = await feed.page(
                        category=query.get("category"),
                        source=query.get("source"),
                        cursor=query.get("cursor"),
                        limit=LIMIT,
                        has_image=bool(query.get("has_image")),
                    )
                    assert page["articles"]

                async def http_call(query: dict[str, Any] = query) -> None:
                    response = await client.get("/api/v1/info/news", params=query)
                    assert response.status_code == 200
                    assert response.json()["articles"]

                await timed(service_call, 20)  # warm the pool, the plan cache and the first-page cache
                svc = await timed(service_call, requests)
                await timed(http_call, 20)
                timer.take()
                await timed(http_call, requests)
                http, cpu = timer.take()
                print(
                    f"{label:<17}{depth!s:>6}{statistics.median(svc):>11.2f}ms{percentile(svc, 0.99):>6.2f}ms"
                    f"{statistics.median(http):>10.2f}ms{percentile(http, 0.99):>6.2f}ms"
                    f"{percentile(cpu, 0.99):>8.2f}ms"
                )
    async with db.session() as session:
        skip = ((await session.scalar(text(f"SELECT count(*) FROM {SCHEMA}.articles")) or 1) - 1) // LIMIT * LIMIT

        async def offset_call() -> None:
            async with db.session() as s:
                await s.execute(
                    text(f"SELECT * FROM {SCHEMA}.articles ORDER BY published_at DESC, id DESC OFFSET :s LIMIT 11"),
                    {"s": skip},
                )

        offset = await timed(offset_call, 20)
        print(f"\nlast page by OFFSET {skip:,} instead of a cursor: p50 {statistics.median(offset):.1f}ms")
        plan = await session.execute(
            text(
                f"EXPLAIN ANALYZE SELECT id FROM {SCHEMA}.articles WHERE category = 'ai' AND "
                "(published_at, id) < ('2026-01-10T00:00:00Z'::timestamptz, 'm') ORDER BY published_at DESC, id DESC LIMIT 11"
            )
        )
        print("\nkeyset plan (category=ai, deep page):")
        for (line,) in plan.all():
            print("  " + line)
    await db.dispose()


async def main(rows: int, requests: int) -> None:
    async with bench_database() as bench:
        with tempfile.TemporaryDirectory() as tmp:
            common = CommonSettings(
                environment=Environment.TEST, database_url=bench.url, data_dir=Path(tmp), log_level="WARNING"
            )
            await asyncio.to_thread(upgrade, SCHEMA, bench.url)
            await load(bench.dsn, rows)
            await measure(bench.url, common, requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.requests))
