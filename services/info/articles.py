"""From what a provider said to what we store: plain text, one URL spelling, id, publisher, category.

Providers hand over ``RawArticle`` values as they found them (markup, entities, odd dates); this
module is the one place that turns them into ``NewsItem`` rows, and the one place that decides an
entry is unusable (no title, no http(s) link): such an entry is dropped alone, never the batch.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from services.info.categories import classify, matched_keywords

MAX_URL = 2048
MAX_TITLE = 300
MAX_SNIPPET = 500
MAX_KEYWORDS = 10
# A publisher clock ahead of ours must not pin an article to the top of the feed for hours.
FUTURE_TOLERANCE = timedelta(minutes=10)
_SPACES = re.compile(r"\s+")
_TRACKING = ("utm_", "fbclid", "gclid")


@dataclass(frozen=True)
class RawArticle:
    """One entry as a provider gave it; every field may still hold markup or be missing."""

    url: str | None
    title: str | None
    snippet: str | None = None
    published_at: datetime | None = None
    thumbnail_url: str | None = None
    source_name: str | None = None
    source_icon_url: str | None = None
    video_url: str | None = None
    categories: Sequence[str] = ()
    ai_tag: str | None = None
    keywords: Sequence[str] | None = None


@dataclass
class NewsItem:
    """An article ready to store (the ``articles`` row)."""

    id: str
    url: str
    url_key: str
    source: str
    source_name: str
    title: str
    snippet: str
    published_at: datetime
    thumbnail_url: str | None
    source_icon_url: str | None
    video_url: str | None
    category: str
    keywords: list[str] | None
    ai_tag: str | None
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(value: str | None, limit: int) -> str:
    """Markup removed, entities decoded (``&quot;`` → ``"``, ``&#8217;`` → ``’``), spaces collapsed."""
    if not value:
        return ""
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    # Entities that were double-escaped by the provider (``&amp;quot;``) come out of the parser as
    # ``&quot;``; one more unescape finishes them, and the result is data, never parsed again.
    text = _SPACES.sub(" ", html.unescape("".join(parser.parts))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def web_url(value: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL in one spelling (host lower-cased, fragment and tracking parameters
    dropped), or None for anything else (``javascript:``, ``data:``, relative without a base)."""
    if not value:
        return None
    text = html.unescape(value.strip())
    if base:
        text = urljoin(base, text)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname.lower() + (f":{port}" if port else "")
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith(_TRACKING)]
    )
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))
    return url if len(url) <= MAX_URL else None


def url_key(url: str) -> str:
    return hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()


def article_id(source: str, url: str) -> str:
    """``<source>_<first 12 hex digits of MD5(url)>`` (docs/api.md, info)."""
    return f"{source}_{url_key(url)[:12]}"


def publisher_domain(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def published(value: datetime | None, fetched_at: datetime) -> datetime:
    """UTC, millisecond precision (the cursor's unit); missing or in the future → the fetch time."""
    if value is None:
        value = fetched_at
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = min(value.astimezone(UTC), fetched_at + FUTURE_TOLERANCE)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def normalize(source: str, raw: RawArticle, fetched_at: datetime) -> NewsItem | None:
    """The row for ``raw``, or None when the entry is unusable (no http(s) link or no title)."""
    url = web_url(raw.url)
    title = plain_text(raw.title, MAX_TITLE)
    if url is None or not title:
        return None
    snippet = plain_text(raw.snippet, MAX_SNIPPET)
    ai_tag = plain_text(raw.ai_tag, 200) or None
    categories = [c for c in raw.categories if isinstance(c, str)]
    provided = [plain_text(k, 60) for k in raw.keywords or () if isinstance(k, str)]
    keywords = [k for k in provided if k][:MAX_KEYWORDS] or matched_keywords(f"{title} {snippet}")[:MAX_KEYWORDS]
    return NewsItem(
        id=article_id(source, url),
        url=url,
        url_key=url_key(url),
        source=source,
        source_name=plain_text(raw.source_name, 100) or publisher_domain(url),
        title=title,
        snippet=snippet,
        published_at=published(raw.published_at, fetched_at),
        thumbnail_url=web_url(raw.thumbnail_url),
        source_icon_url=web_url(raw.source_icon_url),
        video_url=web_url(raw.video_url),
        category=classify(title, snippet, categories, ai_tag),
        keywords=keywords or None,
        ai_tag=ai_tag,
        fetched_at=fetched_at,
    )
