"""The Korean portal news search (Naver News Search API, ``/v1/search/news.json``).

Request: ``query``, ``display`` (≤ 100), ``start``, ``sort=date``; the application's client id and
secret in ``X-Naver-Client-Id`` / ``X-Naver-Client-Secret``. Answer: ``{"lastBuildDate", "total",
"start", "display", "items": [{"title", "originallink", "link", "description", "pubDate"}]}`` with
``<b>`` around the matched words, HTML entities in title and description, RFC-822 dates
(``Tue, 14 Jan 2026 10:30:00 +0900``) and no image (the thumbnail comes from the page's
``og:image``). Errors: ``{"errorMessage", "errorCode"}`` with 4xx, 429 once the daily quota is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from services.common.safehttp import SafeHttpClient
from services.info.articles import RawArticle
from services.info.providers.base import Batch, entries, get_checked, json_object, run_queries, text_or_none

PAGE_SIZE_MAX = 100


def rfc822(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


@dataclass
class NaverNews:
    http: SafeHttpClient
    base_url: str
    client_id: str
    client_secret: str
    queries: tuple[str, ...]
    display: int = 30
    id: str = "naver"
    fetch_page_images: bool = True

    async def fetch(self) -> Batch:
        return await run_queries(self.queries, self._search, self._parse)

    async def _search(self, query: str) -> dict[str, Any]:
        fetched = await get_checked(
            self.http,
            f"{self.base_url}/v1/search/news.json",
            params={"query": query, "display": min(self.display, PAGE_SIZE_MAX), "start": 1, "sort": "date"},
            headers={"X-Naver-Client-Id": self.client_id, "X-Naver-Client-Secret": self.client_secret},
        )
        return json_object(fetched)

    @staticmethod
    def _parse(body: dict[str, Any], batch: Batch) -> None:
        for item in entries(body, "items", batch):
            batch.articles.append(
                RawArticle(
                    # The publisher's own page when the portal knows it, else the portal's copy.
                    url=text_or_none(item.get("originallink")) or text_or_none(item.get("link")),
                    title=text_or_none(item.get("title")),
                    snippet=text_or_none(item.get("description")),
                    published_at=rfc822(item.get("pubDate")),
                )
            )
