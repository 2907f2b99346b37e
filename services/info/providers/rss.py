"""Any publisher's RSS or Atom feed by URL, parsed by feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0).

feedparser copes with the feeds found in the wild (wrong encodings, unescaped ampersands, missing
dates) and says so in ``bozo``; we only give up on a document with no entries at all. It is handed
bytes we fetched ourselves (through the SSRF-safe client, within its size and time limits): given a
URL it would fetch on its own, unguarded. Parsing runs in a thread, off the event loop.

A ``file:`` URL reads a local file instead: only operators write feed URLs (configuration), and the
project's own sample feed (``data/sample_feed.xml``) reaches ``eco2 dev`` this way, through the same
parsing as any feed.
"""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser

from services.common.safehttp import SafeHttpClient
from services.info.articles import RawArticle
from services.info.providers.base import Batch, ProviderError, get_checked, text_or_none


def entry_date(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)  # feedparser normalises to UTC
    return None


def entry_image(entry: Any) -> str | None:
    """``media:thumbnail``, an image ``media:content``, or an image enclosure, in that order."""
    for thumbnail in entry.get("media_thumbnail") or ():
        if text_or_none(thumbnail.get("url")):
            return str(thumbnail["url"])
    for media in entry.get("media_content") or ():
        kind = str(media.get("medium") or media.get("type") or "")
        if text_or_none(media.get("url")) and (kind == "image" or kind.startswith("image/")):
            return str(media["url"])
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return text_or_none(link.get("href"))
    return None


def parse_feed(document: bytes, content_type: str | None) -> tuple[list[RawArticle], int]:
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(document, response_headers=headers)
    entries = parsed.get("entries") or []
    if not entries:
        problem = parsed.get("bozo_exception")
        raise ProviderError(f"no entries in the feed{f' ({problem})' if problem else ''}")
    articles: list[RawArticle] = []
    rejected = 0
    for entry in entries:
        link = text_or_none(entry.get("link"))
        title = text_or_none(entry.get("title"))
        if not link or not title:
            rejected += 1
            continue
        tags = [str(t.get("term")) for t in entry.get("tags") or () if t.get("term")]
        articles.append(
            RawArticle(
                url=link,
                title=title,
                snippet=text_or_none(entry.get("summary")),
                published_at=entry_date(entry),
                thumbnail_url=entry_image(entry),
                keywords=tags or None,
            )
        )
    return articles, rejected


@dataclass
class RssFeed:
    http: SafeHttpClient
    id: str
    url: str
    name: str | None = None  # the publisher's display name; the link's domain otherwise
    fetch_page_images: bool = True
    max_bytes: int = 5_000_000

    async def fetch(self) -> Batch:
        if self.url.startswith("file:"):
            document = await self._read_file()
            content_type = None
        else:
            fetched = await get_checked(self.http, self.url, max_bytes=self.max_bytes)
            document, content_type = fetched.content, fetched.headers.get("content-type")
        articles, rejected = await asyncio.to_thread(parse_feed, document, content_type)
        if self.name:
            articles = [replace(a, source_name=self.name) for a in articles]
        return Batch(articles=articles, rejected=rejected)

    async def _read_file(self) -> bytes:
        path = Path(unquote(urlsplit(self.url).path))
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise ProviderError(f"cannot read {path}: {exc}") from exc
