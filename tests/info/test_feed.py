"""``GET /api/v1/info/news``: keyset pages as the news tab calls them, filters, meta, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from services.common.config import CommonSettings
from services.common.db import Database
from services.info.app import create_app
from services.info.config import InfoSettings
from services.info.models import Article, FeedSource
from services.info.schemas import NewsPage
from services.info.store import FEED_CHANNEL
from tests.conftest import REAL
from tests.info.conftest import item, store
from tests.support.clients import app_client
from tests.support.events import eventually

NEWS = "/api/v1/info/news"
CATEGORIES = [{"id": "all", "name": "전체"}, {"id": "environment", "name": "환경"},
              {"id": "energy", "name": "에너지"}, {"id": "ai", "name": "AI"}]  # fmt: skip


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Page through like the client: limit=10, then each next_cursor unchanged, until null."""
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {"limit": 10, **params} | ({"cursor": cursor} if cursor else {})
        response = await client.get(NEWS, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        NewsPage.model_validate(page)  # the rendered body matches the documented model
        assert page["has_more"] is (page["next_cursor"] is not None)
        seen.extend(page["articles"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["articles"]) <= 10
            return seen
        assert len(page["articles"]) == 10  # short only at the end
    raise AssertionError("paging did not end")


def order_key(article: dict[str, Any]) -> tuple[str, str]:
    return article["published_at"], article["id"]


async def test_empty_store_is_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get(NEWS, params={"limit": 10})
    assert response.status_code == 200
    assert response.json() == {
        "articles": [],
        "next_cursor": None,
        "has_more": False,
        "meta": {"total_cached": 0, "cache_expires_in": 0},
    }


async def test_paging_through_every_article_in_keyset_order(client: httpx.AsyncClient, empty_db: Database) -> None:
    same_time = datetime(2026, 1, 10, tzinfo=UTC)
    items = [item(n) for n in range(1, 31)]
    items += [item(100 + n, published=same_time) for n in range(5)]  # ties: ordered by id
    items += [item(200 + n, category="energy", image=n % 2 == 0) for n in range(4)]
    await store(empty_db, *items)
    articles = await all_pages(client)
    assert len(articles) == len(items) == len({a["id"] for a in articles})
    assert articles == sorted(articles, key=order_key, reverse=True)
    first = articles[0]
    assert set(first) == {
        "id", "title", "url", "snippet", "source", "source_name", "published_at", "thumbnail_url",
        "category", "source_icon_url", "video_url", "keywords", "ai_tag",
    }  # fmt: skip
    assert first["published_at"].endswith(".000Z")

    energy = await all_pages(client, category="energy")
    assert [a["id"] for a in energy] == [a["id"] for a in articles if a["category"] == "energy"]
    with_images = await all_pages(client, has_image="true")
    assert [a["id"] for a in with_images] == [a["id"] for a in articles if a["thumbnail_url"]]
    assert len(with_images) == len(items) - 2
    page = (await client.get(NEWS, params={"category": "energy", "limit": 10})).json()
    assert page["meta"]["total_cached"] == 4
    assert (await client.get(NEWS)).json()["meta"]["total_cached"] == len(items)


async def test_source_filter(client_factory: Callable[..., Any], empty_db: Database) -> None:
    await store(empty_db, *(item(n) for n in range(3)), *(item(10 + n, source="naver") for n in range(12)))
    settings = {"naver_client_id": "i", "naver_client_secret": "s"}
    async with client_factory(**settings) as client:
        naver = await all_pages(client, source="naver")
        assert len(naver) == 12
        assert {a["source"] for a in naver} == {"naver"}
        assert len(await all_pages(client, source="ALL")) == 15
        refused = await client.get(NEWS, params={"source": "newsdata"})  # not configured here
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_SOURCE")


async def test_a_cursor_keeps_its_place_when_articles_come_and_go(
    client: httpx.AsyncClient, empty_db: Database
) -> None:
    await store(empty_db, *(item(n) for n in range(1, 21)))
    first = (await client.get(NEWS, params={"limit": 10})).json()
    last_seen = first["articles"][-1]
    async with empty_db.session() as session:  # the article the cursor points at is pruned
        await session.execute(delete(Article).where(Article.id == last_seen["id"]))
    await store(empty_db, item(500, published=datetime(2026, 2, 1, tzinfo=UTC)))  # a newer one arrives
    second = (await client.get(NEWS, params={"limit": 10, "cursor": first["next_cursor"]})).json()
    assert [a["title"] for a in second["articles"]] == [f"기사 {n}" for n in range(10, 0, -1)]
    assert second["next_cursor"] is None


async def test_meta_tells_when_the_next_refresh_is(client: httpx.AsyncClient, empty_db: Database, kv: Any) -> None:
    await store(empty_db, item(1))
    async with empty_db.session() as session:
        session.add(FeedSource(id="testpaper", failures=0, fence=0, last_new_articles=0))
    page = (await client.get(NEWS)).json()
    assert page["meta"]["cache_expires_in"] == 0  # never ran: due now
    async with empty_db.session() as session:
        await session.execute(update(FeedSource).values(next_run_at=datetime.now(UTC) + timedelta(seconds=300)))
    await kv.publish(FEED_CHANNEL, "*")  # the refresher announces every run

    async def rescheduled() -> bool:
        return 290 <= (await client.get(NEWS)).json()["meta"]["cache_expires_in"] <= 300

    await eventually(rescheduled, timeout=5)


async def test_first_page_is_cached_until_the_refresher_announces_new_articles(
    migrated: CommonSettings, empty_db: Database, kv: Any
) -> None:
    settings = InfoSettings(environment="test", rss_feeds=[{"id": "testpaper", "url": "https://x.example/rss"}])
    app = create_app(common=migrated, settings=settings)
    async with app_client(app) as client:
        cache = app.state.news.cache
        if REAL:
            # Redis confirms the API's subscription with a message that drops every cached page once
            # (what was published before it is lost): wait for it, or it would race the reads below.
            async def subscribed() -> bool:
                return cache.generation >= 1

            await eventually(subscribed, timeout=10)
        await store(empty_db, item(1))
        assert len((await client.get(NEWS)).json()["articles"]) == 1
        await store(empty_db, item(2))
        assert len((await client.get(NEWS)).json()["articles"]) == 1  # served from memory
        await kv.publish(FEED_CHANNEL, "*")  # what the refresher does after storing

        async def refreshed() -> bool:
            page = (await client.get(NEWS)).json()
            return len(page["articles"]) == 2 and page["meta"]["total_cached"] == 2

        await eventually(refreshed, timeout=10)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"category": "sports"}, 400, "INVALID_CATEGORY"),
        ({"category": "x" * 10_000}, 400, "INVALID_CATEGORY"),
        ({"source": "naverr"}, 400, "INVALID_SOURCE"),
        ({"source": "s" * 10_000}, 400, "INVALID_SOURCE"),
        ({"cursor": "not-a-cursor"}, 400, "INVALID_CURSOR"),
        ({"cursor": "1768829940000_testpaper_zzzzzzzzzzzz"}, 400, "INVALID_CURSOR"),  # forged id
        ({"cursor": "1768829940000_<script>"}, 400, "INVALID_CURSOR"),
        ({"cursor": "99999999999999999999"}, 400, "INVALID_CURSOR"),  # past year 9999
        ({"cursor": "-5"}, 400, "INVALID_CURSOR"),
        ({"cursor": "9" * 10_000}, 400, "INVALID_CURSOR"),
        ({"limit": 0}, 422, None),
        ({"limit": 51}, 422, None),
        ({"limit": "ten"}, 422, None),
        ({"limit": "9" * 10_000}, 422, None),
        ({"has_image": "maybe"}, 422, None),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, code: str | None
) -> None:
    response = await client.get(NEWS, params=params)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["code"] == code
    else:
        assert isinstance(response.json()["detail"], list)  # FastAPI's validation shape


async def test_old_style_cursor_of_bare_milliseconds(client: httpx.AsyncClient, empty_db: Database) -> None:
    await store(empty_db, *(item(n) for n in range(1, 6)))
    cutoff = int((datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=3)).timestamp() * 1000)
    page = (await client.get(NEWS, params={"cursor": str(cutoff)})).json()
    assert [a["title"] for a in page["articles"]] == ["기사 2", "기사 1"]


async def test_categories_and_alias(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/info/news/categories", "/api/v1/info/categories"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json() == {"categories": CATEGORIES}


async def test_openapi_documents_the_feed(client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    schema = (await client.get("/api/v1/info/openapi.json")).json()
    news = schema["paths"][NEWS]["get"]
    assert {p["name"] for p in news["parameters"]} == {"category", "cursor", "limit", "source", "has_image"}
    assert "INVALID_CURSOR" in news["responses"]["400"]["description"]
    assert schema["components"]["schemas"]["NewsPage"]
