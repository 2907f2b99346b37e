"""The one interface every news provider adapter implements, and the failures it may report."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from services.common.safehttp import Fetched, FetchError, SafeHttpClient
from services.info.articles import RawArticle


class ProviderError(Exception):
    """The provider gave nothing usable this time; stored articles stay as they are."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after  # seconds the provider asked us to wait (429 Retry-After)


class RateLimited(ProviderError):
    pass


@dataclass
class Batch:
    """What one refresh of one provider produced."""

    articles: list[RawArticle] = field(default_factory=list)
    rejected: int = 0  # entries dropped as malformed
    errors: list[str] = field(default_factory=list)  # queries that failed while others succeeded


class NewsProvider(Protocol):
    id: str
    # Whether articles without an image get one from their page's ``og:image`` (the portal has none).
    fetch_page_images: bool

    async def fetch(self) -> Batch:
        """Everything the provider has for us now; raises ``ProviderError`` when nothing came back."""
        ...


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def get_checked(http: SafeHttpClient, url: str, **kwargs: Any) -> Fetched:
    """GET and turn every failure into a ``ProviderError`` (429 → ``RateLimited`` with its wait)."""
    try:
        fetched = await http.get(url, **kwargs)
    except FetchError as exc:
        raise ProviderError(f"{exc.reason}: {exc}") from exc
    if fetched.status == 429:
        raise RateLimited("rate limited (HTTP 429)", retry_after=retry_after(fetched.headers.get("retry-after")))
    if not fetched.ok:
        raise ProviderError(f"HTTP {fetched.status}: {fetched.content[:200].decode('utf-8', 'replace')}")
    return fetched


def json_object(fetched: Fetched) -> dict[str, Any]:
    try:
        body = json.loads(fetched.content)
    except ValueError as exc:
        raise ProviderError(f"not JSON: {fetched.content[:80]!r}") from exc
    if not isinstance(body, dict):
        raise ProviderError(f"expected a JSON object, got {type(body).__name__}")
    return body


def entries(body: dict[str, Any], key: str, batch: Batch) -> Iterator[dict[str, Any]]:
    """The JSON objects listed under ``key``; any other entry is counted as rejected. No list at all
    is a garbage answer (``ProviderError``)."""
    listed = body.get(key)
    if not isinstance(listed, list):
        raise ProviderError(f"answer without a {key} list: {str(body)[:120]}")
    for entry in listed:
        if isinstance(entry, dict):
            yield entry
        else:
            batch.rejected += 1


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


async def run_queries(
    queries: Sequence[str],
    fetch_one: Callable[[str], Awaitable[dict[str, Any]]],
    parse_one: Callable[[dict[str, Any], Batch], None],
) -> Batch:
    """Ask each query in turn. A rate limit stops the run (asking again would only burn quota); other
    failures skip that query. Nothing at all → the first failure is raised."""
    batch = Batch()
    succeeded = 0
    for query in queries:
        try:
            parse_one(await fetch_one(query), batch)  # a body of the wrong shape raises ProviderError
        except RateLimited as exc:
            if succeeded:
                batch.errors.append(f"{query}: {exc}")
                break  # keep what we have; the next run comes after the provider's wait anyway
            raise
        except ProviderError as exc:
            batch.errors.append(f"{query}: {exc}")
            continue
        succeeded += 1
    if not succeeded:
        raise ProviderError("; ".join(batch.errors) or "no queries configured")
    return batch
