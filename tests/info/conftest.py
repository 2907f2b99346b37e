from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.kv import KeyValueStore, create_kv
from services.info.app import create_app
from services.info.articles import NewsItem, article_id, url_key
from services.info.config import InfoSettings
from services.info.models import SCHEMA, Article, FeedSource
from services.info.refresh import Refresher
from services.info.store import insert_new
from services.info.worker import news_refresher
from tests.info.fake_providers import FakeNews, fake_news_app
from tests.support.clients import app_client
from tests.support.servers import serve_asgi

LOOPBACK = ["127.0.0.1/32"]


class Clock:
    """A controllable "now" for schedules and leases."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 20, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
async def info_db(migrated: CommonSettings) -> AsyncIterator[Database]:
    db = Database(database_url_for(SCHEMA, migrated.database_url, migrated.data_dir), SCHEMA)
    yield db
    await db.dispose()


@pytest.fixture
async def empty_db(info_db: Database) -> Database:
    async with info_db.session() as session:
        await session.execute(delete(Article))
        await session.execute(delete(FeedSource))
    return info_db


@pytest.fixture(scope="session")
def fake_news() -> Iterator[FakeNews]:
    fake = FakeNews()
    with serve_asgi(fake_news_app(fake)) as base:
        fake.base = base
        yield fake


@pytest.fixture
def fake(fake_news: FakeNews) -> FakeNews:
    fake_news.reset()
    return fake_news


def provider_settings(fake: FakeNews, **overrides: Any) -> InfoSettings:
    """Every provider pointed at the local fake, loopback allowed, short timeouts."""
    values: dict[str, Any] = {
        "environment": "test",
        "naver_client_id": "test-id",
        "naver_client_secret": "test-secret",
        "naver_base_url": fake.base,
        "naver_queries": ["환경 분리배출 재활용"],
        "newsdata_api_key": "test-key",
        "newsdata_base_url": fake.base,
        "newsdata_queries": ["environment recycling waste"],
        "rss_feeds": [{"id": "testpaper", "url": f"{fake.base}/feed.xml", "name": "테스트 신문"}],
        "fetch_allow_networks": LOOPBACK,
        "fetch_timeout_seconds": 1.0,
        "page_image_timeout_seconds": 1.0,
        "retention_days": 0,
    }
    return InfoSettings(**(values | overrides))


@asynccontextmanager
async def refresher_for(
    common: CommonSettings, settings: InfoSettings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[Refresher]:
    """The worker's refresher on the test database, with a fixed clock and no jitter draw."""
    async with news_refresher(common, settings, clock=clock or Clock(), rng=lambda: 0.5) as refresher:
        await refresher.ensure_rows()
        yield refresher


@pytest.fixture
def kv(migrated: CommonSettings) -> KeyValueStore:
    return create_kv(migrated.redis_url, migrated.redis_key_prefix)


def item(
    n: int,
    *,
    source: str = "testpaper",
    category: str = "environment",
    published: datetime | None = None,
    image: bool = True,
) -> NewsItem:
    url = f"https://news.example.com/{source}/{n}"
    return NewsItem(
        id=article_id(source, url),
        url=url,
        url_key=url_key(url),
        source=source,
        source_name="news.example.com",
        title=f"기사 {n}",
        snippet=f"요약 {n}",
        published_at=published or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        thumbnail_url=f"https://img.example.com/{n}.jpg" if image else None,
        source_icon_url=None,
        video_url=None,
        category=category,
        keywords=["재활용"],
        ai_tag=None,
    )


async def store(db: Database, *items: NewsItem) -> None:
    async with db.session() as session:
        await insert_new(session, items)


@pytest.fixture
def client_factory(migrated: CommonSettings) -> Callable[..., Any]:
    def build(**settings: Any) -> Any:
        values = {"environment": "test", "rss_feeds": [{"id": "testpaper", "url": "https://x.example/rss"}]}
        return app_client(create_app(common=migrated, settings=InfoSettings(**(values | settings))))

    return build


@pytest.fixture
async def client(client_factory: Callable[..., Any], empty_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with client_factory() as c:
        yield c
