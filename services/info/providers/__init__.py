"""News providers: one interface (``NewsProvider.fetch``), three adapters, chosen by configuration.

- ``naver``: the Korean portal's news search (``naver.py``);
- ``newsdata``: the international news API (``newsdata.py``);
- any number of RSS/Atom feeds by URL (``rss.py``), each with its own id;
- ``sample``: the project's sample feed through the RSS adapter, in development when nothing else is
  configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.common.safehttp import SafeHttpClient
from services.info.config import SAMPLE_ID, FeedConfig, InfoSettings, source_ids
from services.info.providers.base import Batch, NewsProvider, ProviderError, RateLimited
from services.info.providers.naver import NaverNews
from services.info.providers.newsdata import NewsData
from services.info.providers.rss import RssFeed

__all__ = [
    "SAMPLE_FEED",
    "Batch",
    "NewsProvider",
    "ProviderError",
    "RateLimited",
    "Source",
    "configured_sources",
    "source_ids",
]

SAMPLE_FEED = Path(__file__).resolve().parent.parent / "data" / "sample_feed.xml"


@dataclass(frozen=True)
class Source:
    provider: NewsProvider
    interval_seconds: float
    # Articles older than the retention window are neither stored nor kept; the sample feed's fixed
    # dates would fall out of it, so it is kept whole.
    retained: bool = True

    @property
    def id(self) -> str:
        return self.provider.id


def configured_sources(settings: InfoSettings, http: SafeHttpClient, *, development: bool) -> list[Source]:
    feeds = {feed.id: feed for feed in settings.rss_feeds}
    return [_build(source, settings, http, feeds) for source in source_ids(settings, development=development)]


def _build(source: str, settings: InfoSettings, http: SafeHttpClient, feeds: dict[str, FeedConfig]) -> Source:
    if source == "naver":
        assert settings.naver_client_id
        assert settings.naver_client_secret
        naver = NaverNews(
            http,
            settings.naver_base_url,
            settings.naver_client_id,
            settings.naver_client_secret,
            tuple(settings.naver_queries),
            settings.naver_display,
        )
        return Source(naver, settings.naver_interval_seconds)
    if source == "newsdata":
        assert settings.newsdata_api_key
        newsdata = NewsData(
            http,
            settings.newsdata_base_url,
            settings.newsdata_api_key,
            tuple(settings.newsdata_queries),
            settings.newsdata_endpoint,
            settings.newsdata_country,
        )
        return Source(newsdata, settings.newsdata_interval_seconds)
    if source == SAMPLE_ID:
        sample = RssFeed(http, SAMPLE_ID, SAMPLE_FEED.as_uri(), "Eco² 샘플 뉴스", fetch_page_images=False)
        return Source(sample, settings.rss_interval_seconds, retained=False)
    feed = feeds[source]
    rss = RssFeed(http, feed.id, feed.url, feed.name, feed.page_images, settings.fetch_max_bytes)
    return Source(rss, feed.interval_seconds or settings.rss_interval_seconds)
