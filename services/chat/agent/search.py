"""Live web search for the ``web_search`` intent, off unless configured (docs/chat.md).

One adapter: the SearXNG JSON API (``GET {base}/search?q=…&format=json``), a self-hostable
metasearch engine, so no search vendor is baked in; ``CHAT_SEARCH_BASE_URL`` (and
``CHAT_SEARCH_API_KEY``, sent as a bearer token when set, for a gateway in front of it). Results are
returned with their URLs so every answer cites its sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from services.chat.agent.clients import ToolUnavailable
from services.common.logging import get_logger

log = get_logger("eco2.chat.search")


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchProvider(Protocol):
    async def search(self, query: str, limit: int) -> list[SearchResult]: ...


class SearxSearch:
    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str | None = None, timeout: float = 5.0
    ) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/search"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        try:
            response = await self.http.get(
                self.url,
                params={"q": query, "format": "json", "language": "ko"},
                headers=self.headers,
                timeout=self.timeout,
            )
            response.raise_for_status()
            rows: list[dict[str, Any]] = response.json()["results"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("search_unavailable", error=repr(exc))
            raise ToolUnavailable("search") from exc
        results = []
        for row in rows:
            url = str(row.get("url") or "")
            if url.startswith(("http://", "https://")):
                title = str(row.get("title") or url).strip()
                results.append(SearchResult(title, url, str(row.get("content") or "").strip()[:300]))
        return results[:limit]
