"""The international news API (NewsData.io, ``/api/1/latest`` or ``/api/1/news``), filtered to ``kr``.

Request: ``apikey``, ``q``, ``country``. Answer: ``{"status": "success", "totalResults", "results":
[{"article_id", "title", "link", "description", "pubDate": "2026-01-14 01:30:00", "pubDateTZ": "UTC",
"image_url", "source_name", "source_icon", "video_url", "category": [...], "keywords": [...] | null,
"ai_tag": ... }], "nextPage"}``. On plans without AI tags ``ai_tag`` holds a notice ("ONLY AVAILABLE
IN PAID PLANS"), which is not a tag. Errors: ``{"status": "error", "results": {"message", "code"}}``
with 4xx, 429 for the rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from services.common.safehttp import SafeHttpClient
from services.info.articles import RawArticle
from services.info.providers.base import (
    Batch,
    ProviderError,
    entries,
    get_checked,
    json_object,
    run_queries,
    text_or_none,
)


def newsdata_date(value: Any) -> datetime | None:
    """``2026-01-14 01:30:00`` (UTC, ``pubDateTZ``), or ISO-8601 with an offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ai_tag(value: Any) -> str | None:
    if isinstance(value, list):
        value = ", ".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str) or not value.strip() or "AVAILABLE IN" in value.upper():
        return None
    return value


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass
class NewsData:
    http: SafeHttpClient
    base_url: str
    api_key: str
    queries: tuple[str, ...]
    endpoint: Literal["latest", "news"] = "latest"
    country: str = "kr"
    id: str = "newsdata"
    fetch_page_images: bool = False  # it sends its own images; one missing stays missing

    async def fetch(self) -> Batch:
        return await run_queries(self.queries, self._search, self._parse)

    async def _search(self, query: str) -> dict[str, Any]:
        fetched = await get_checked(
            self.http,
            f"{self.base_url}/api/1/{self.endpoint}",
            params={"apikey": self.api_key, "q": query, "country": self.country},
        )
        body = json_object(fetched)
        if body.get("status") != "success":
            raise ProviderError(f"status {body.get('status')!r}: {str(body.get('results'))[:200]}")
        return body

    @staticmethod
    def _parse(body: dict[str, Any], batch: Batch) -> None:
        for item in entries(body, "results", batch):
            keywords = strings(item.get("keywords"))
            batch.articles.append(
                RawArticle(
                    url=text_or_none(item.get("link")),
                    title=text_or_none(item.get("title")),
                    snippet=text_or_none(item.get("description")),
                    published_at=newsdata_date(item.get("pubDate")),
                    thumbnail_url=text_or_none(item.get("image_url")),
                    source_name=text_or_none(item.get("source_name")),
                    source_icon_url=text_or_none(item.get("source_icon")),
                    video_url=text_or_none(item.get("video_url")),
                    categories=strings(item.get("category")),
                    ai_tag=ai_tag(item.get("ai_tag")),
                    keywords=keywords or None,
                )
            )
