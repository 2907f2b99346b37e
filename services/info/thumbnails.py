"""An article's thumbnail from its page's ``og:image`` (the portal search returns no images).

Pages are fetched with the kernel's SSRF-safe client: only public addresses, redirects checked hop
by hop, the first ``max_bytes`` only (the ``<head>`` is all we need), a per-page timeout, a few
pages at once. One run of a provider spends at most ``budget`` seconds on pages; a page that fails
or is not done by then just leaves its article without a thumbnail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from html.parser import HTMLParser

from services.common.logging import get_logger
from services.common.safehttp import FetchError, SafeHttpClient
from services.info.articles import web_url

log = get_logger("eco2.info.thumbnails")
# Most specific first; twitter:image is the common fallback of pages without Open Graph.
_PROPERTIES = ("og:image:secure_url", "og:image:url", "og:image", "twitter:image", "twitter:image:src")


class _MetaImage(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, str] = {}
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.done = True
        if tag != "meta" or self.done:
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        key = (values.get("property") or values.get("name") or "").strip().lower()
        if key in _PROPERTIES and values.get("content", "").strip():
            self.found.setdefault(key, values["content"].strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.done = True


def page_image(html_text: str, page_url: str) -> str | None:
    """The absolute http(s) image URL a page announces in its ``<head>``, if any."""
    parser = _MetaImage()
    try:
        parser.feed(html_text)
        parser.close()
    except Exception:
        return None
    for key in _PROPERTIES:
        url = web_url(parser.found.get(key), base=page_url)
        if url:
            return url
    return None


class PageImages:
    def __init__(self, http: SafeHttpClient, *, timeout: float, max_bytes: int, budget: float) -> None:
        self.http = http
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.budget = budget

    async def one(self, url: str) -> str | None:
        try:
            fetched = await self.http.get(
                url, max_bytes=self.max_bytes, truncate=True, timeout=self.timeout, headers={"Accept": "text/html"}
            )
        except FetchError as exc:
            log.info("page_image_skipped", url=url, reason=exc.reason)
            return None
        if not fetched.ok or "html" not in fetched.headers.get("content-type", "text/html"):
            return None
        return await asyncio.to_thread(page_image, fetched.text(), fetched.url)

    async def many(self, urls: Sequence[str], progress: Callable[[int], None] | None = None) -> dict[str, str]:
        """Page URL → image URL for the pages that have one, within the run's time budget."""
        if not urls:
            return {}

        async def fetch(url: str) -> tuple[str, str | None]:
            return url, await self.one(url)

        tasks = [asyncio.create_task(fetch(url)) for url in urls]
        found: dict[str, str] = {}
        try:
            for done, next_done in enumerate(asyncio.as_completed(tasks, timeout=self.budget), start=1):
                url, image = await next_done
                if image:
                    found[url] = image
                if progress:
                    progress(done)
        except TimeoutError:
            log.info("page_images_budget_spent", pending=sum(not t.done() for t in tasks))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return found
