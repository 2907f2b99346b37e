"""The ``openai`` SDK client of the model providers, with the chat-completion request built cheaply.

A scan makes two chat completions, and the SDK's generic request building was the largest part of
their CPU (docs/benchmarks.md, issue 19, tenth round): it merges the path into the base URL, turns
the URL into a string and has httpx parse it again, and builds the headers twice over. ``ModelClient``
keeps the SDK for everything that decides behaviour — auth and default headers, the idempotency
key, the retry-count and read-timeout headers (``_build_headers``), retries with backoff, timeouts,
4xx/5xx → typed errors, the transport — and only takes the URL and the timeout of a completion from
a request the SDK built once, at start-up. Any other request, or one with per-call options, goes
the SDK's own way.
"""

from __future__ import annotations

from typing import Any

import httpx2
from openai import AsyncOpenAI, NotGiven
from openai._models import FinalRequestOptions

CHAT_COMPLETIONS = "/chat/completions"


class ModelClient(AsyncOpenAI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The SDK's own request for a completion: its URL (base URL + path) and timeout extension are
        # the same for every completion this client sends.
        probe = super()._build_request(
            FinalRequestOptions.construct(method="post", url=CHAT_COMPLETIONS, content=b"{}")
        )
        self._completion_url: httpx2.URL = probe.url
        self._completion_extensions: dict[str, Any] = dict(probe.extensions)

    async def complete(self, body: bytes) -> httpx2.Response:
        """POST a JSON body (already serialised) to chat completions; the raw response, body read.
        Raises the SDK's errors, after the SDK's retries."""
        response: httpx2.Response = await self.post(CHAT_COMPLETIONS, content=body, cast_to=httpx2.Response)
        return response

    def _build_request(self, options: FinalRequestOptions, *, retries_taken: int = 0) -> httpx2.Request:
        content = options.content
        if not isinstance(content, bytes) or not _plain_completion(options):
            return super()._build_request(options, retries_taken=retries_taken)
        headers = httpx2.Headers(self._client.headers)  # what httpx's ``build_request`` merges in, too
        headers.update(self._build_headers(options, retries_taken=retries_taken))
        return httpx2.Request(
            "POST", self._completion_url, headers=headers, content=content,
            extensions=dict(self._completion_extensions),
        )  # fmt: skip


def _plain_completion(options: FinalRequestOptions) -> bool:
    """A completion sent by ``complete``: no per-call URL, query, headers, timeout or body merge."""
    return (
        options.url == CHAT_COMPLETIONS
        and options.method == "post"
        and options.json_data is None
        and options.extra_json is None
        and options.files is None
        and not options.params
        and isinstance(options.headers, NotGiven)
        and isinstance(options.timeout, NotGiven)
    )
