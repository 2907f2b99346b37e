"""Each adapter against a local server replaying its provider's real answers and failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.common.safehttp import SafeHttpClient
from services.info.providers import ProviderError, RateLimited
from services.info.providers.naver import NaverNews
from services.info.providers.newsdata import NewsData
from services.info.providers.rss import RssFeed
from tests.info.conftest import LOOPBACK
from tests.info.fake_providers import FakeNews


@pytest.fixture
async def http() -> AsyncIterator[SafeHttpClient]:
    client = SafeHttpClient(allow_networks=LOOPBACK, timeout=1.0)
    yield client
    await client.aclose()


def naver(http: SafeHttpClient, fake: FakeNews, queries: tuple[str, ...] = ("환경 분리배출 재활용",)) -> NaverNews:
    return NaverNews(http, fake.base, "id-1", "secret-1", queries, display=50)


def newsdata(http: SafeHttpClient, fake: FakeNews, endpoint: str = "latest") -> NewsData:
    return NewsData(http, fake.base, "key-1", ("environment recycling waste",), endpoint)  # type: ignore[arg-type]


def adapter_for(provider: str, http: SafeHttpClient, fake: FakeNews) -> NaverNews | NewsData | RssFeed:
    if provider == "naver":
        return naver(http, fake)
    if provider == "newsdata":
        return newsdata(http, fake)
    return RssFeed(http, "testpaper", f"{fake.base}/feed.xml")


async def test_naver_request_and_answer_shape(http: SafeHttpClient, fake: FakeNews) -> None:
    batch = await naver(http, fake).fetch()
    provider, params, headers = fake.requests[-1]
    assert provider == "naver"
    assert params == {"query": "환경 분리배출 재활용", "display": "50", "start": "1", "sort": "date"}
    assert (headers["x-naver-client-id"], headers["x-naver-client-secret"]) == ("id-1", "secret-1")
    assert batch.rejected == 1  # the entry that is not an object; the others are judged when normalised
    first = batch.articles[0]
    assert first.url == fake.page(2)  # originallink preferred over the portal's link
    assert first.published_at == datetime(2026, 1, 20, 1, 30, tzinfo=UTC)  # RFC-822 +0900
    assert first.title is not None
    assert "<b>" in first.title  # raw here; cleaned by normalize()
    assert batch.articles[2].url == fake.page(4)  # no originallink → the portal link
    assert batch.articles[3].published_at is None  # unreadable date


async def test_newsdata_answer_shape(http: SafeHttpClient, fake: FakeNews) -> None:
    batch = await newsdata(http, fake, "news").fetch()
    provider, params, _ = fake.requests[-1]
    assert provider == "newsdata"
    assert params == {"apikey": "key-1", "q": "environment recycling waste", "country": "kr"}
    ev, rules, broken = batch.articles
    assert ev.published_at == datetime(2026, 1, 20, 2, 15, tzinfo=UTC)
    assert (ev.thumbnail_url, ev.source_name, ev.categories) == (
        "https://cdn.example.com/ev.jpg",
        "The Korea Herald",
        ["business"],
    )
    assert ev.ai_tag is None  # the plan notice is not a tag
    assert list(ev.keywords or []) == ["ev", "battery"]
    assert (rules.thumbnail_url, rules.ai_tag, rules.keywords) == (None, "climate change", None)
    assert broken.url is None


async def test_rss_and_atom_feeds(http: SafeHttpClient, fake: FakeNews) -> None:
    batch = await RssFeed(http, "testpaper", f"{fake.base}/feed.xml", "테스트 신문").fetch()
    assert batch.rejected == 1  # the entry without a link
    expo, forum, plain, duplicate = batch.articles
    assert expo.title == "재활용 & 새활용 박람회 개막"
    assert expo.thumbnail_url == "https://img.example.com/expo.jpg"  # media:thumbnail
    assert forum.thumbnail_url == "https://img.example.com/forum.png"  # image enclosure
    assert plain.thumbnail_url is None
    assert expo.published_at == datetime(2026, 1, 19, 9, 0, tzinfo=UTC)
    assert expo.source_name == "테스트 신문"
    assert duplicate.url == f"{fake.page(10)}#comments"  # same article: dedup happens on the normalised URL
    atom = await RssFeed(http, "atomtest", f"{fake.base}/atom.xml").fetch()
    assert [(a.title, a.published_at) for a in atom.articles] == [
        ("Solar <i>farms</i> grow", datetime(2026, 1, 20, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("provider", "mode"),
    [
        (p, m)
        for p in ("naver", "newsdata", "rss")
        for m in ("500", "garbage", "shape", "hang")
        if (p, m) != ("rss", "shape")
    ],
)
async def test_failures_raise_provider_errors(http: SafeHttpClient, fake: FakeNews, provider: str, mode: str) -> None:
    fake.mode[provider] = mode
    source = adapter_for(provider, http, fake)
    with pytest.raises(ProviderError):
        await source.fetch()


@pytest.mark.parametrize("provider", ["naver", "newsdata", "rss"])
async def test_rate_limit_carries_retry_after(http: SafeHttpClient, fake: FakeNews, provider: str) -> None:
    fake.mode[provider] = "429"
    source = adapter_for(provider, http, fake)
    with pytest.raises(RateLimited) as raised:
        await source.fetch()
    assert raised.value.retry_after == 120


async def test_newsdata_error_body(http: SafeHttpClient, fake: FakeNews) -> None:
    fake.mode["newsdata"] = "error-body"
    with pytest.raises(ProviderError, match="401"):
        await newsdata(http, fake).fetch()


async def test_one_failing_query_does_not_lose_the_others(http: SafeHttpClient, fake: FakeNews) -> None:
    batch = await naver(http, fake, ("환경", "에너지")).fetch()
    assert len(fake.requests) == 2
    assert len(batch.articles) == 2 * 7
    assert batch.errors == []


async def test_sample_feed_reads_through_the_rss_adapter(http: SafeHttpClient) -> None:
    from services.info.providers import SAMPLE_FEED

    batch = await RssFeed(http, "sample", SAMPLE_FEED.as_uri()).fetch()
    assert len(batch.articles) >= 20
    assert all(a.title and a.title.startswith("[샘플]") for a in batch.articles)
    with pytest.raises(ProviderError):
        await RssFeed(http, "sample", "file:///nonexistent/feed.xml").fetch()
