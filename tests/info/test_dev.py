"""``eco2 dev`` with no keys: the refresher worker reads the project's sample feed through the RSS
adapter, and the news tab's calls page through it offline."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from services.common.config import CommonSettings, Environment
from services.common.db import Database
from services.info.app import create_app
from services.info.config import InfoSettings
from services.info.models import Article
from services.info.worker import run_news_refresher
from services.registry import SERVICES
from tests.info.test_feed import NEWS, all_pages
from tests.support.clients import app_client
from tests.support.events import eventually


def test_the_refresher_is_a_registered_worker() -> None:
    assert SERVICES["info"].workers == {"info-refresh": "services.info.worker:run_news_refresher"}


async def test_dev_mode_fills_the_feed_from_the_sample(empty_db: Database, migrated: CommonSettings) -> None:
    dev = migrated.model_copy(update={"environment": Environment.DEVELOPMENT})
    settings = InfoSettings(environment="development")  # no provider keys
    stop = asyncio.Event()
    worker = asyncio.create_task(run_news_refresher(dev, stop, settings=settings))
    try:

        async def filled() -> bool:
            async with empty_db.session() as session:
                return bool(await session.scalar(select(func.count()).select_from(Article)))

        await eventually(filled, timeout=20)
        async with app_client(create_app(common=dev, settings=settings)) as client:
            first: Any = (await client.get(NEWS, params={"limit": 10})).json()
            assert len(first["articles"]) == 10
            assert first["articles"][0]["title"].startswith("[샘플]")
            assert first["articles"][0]["source"] == "sample"
            second = (await client.get(NEWS, params={"limit": 10, "cursor": first["next_cursor"]})).json()
            assert {a["id"] for a in second["articles"]}.isdisjoint(a["id"] for a in first["articles"])
            everything = await all_pages(client)
            assert len(everything) == first["meta"]["total_cached"] >= 20
            ai = await all_pages(client, category="ai")
            assert ai
            assert all(a["category"] == "ai" for a in ai)
            assert first["meta"]["cache_expires_in"] > 0
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)


async def test_without_sources_outside_development_the_worker_idles(migrated: CommonSettings) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(run_news_refresher(migrated, stop, settings=InfoSettings(environment="test")))
    await asyncio.sleep(0.05)
    assert not worker.done()
    stop.set()
    await asyncio.wait_for(worker, 5)


def test_placeholder_keys_leave_a_provider_off() -> None:
    placeholders = InfoSettings(naver_client_id="CHANGE_ME", naver_client_secret="x", newsdata_api_key=" ")
    assert not placeholders.naver_enabled
    assert not placeholders.newsdata_enabled
    assert InfoSettings(naver_client_id="app-id", naver_client_secret="s3cr3t-value").naver_enabled
