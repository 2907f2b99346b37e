"""Attack (issue 12.9): a client that disconnects mid-upload is not a 500 ``unhandled_error``.

Driven at the ASGI level (a transport cannot drop a connection half-way): the body arrives in part,
then ``http.disconnect``. Nothing is stored, nothing is logged as an error, no 500 is sent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from services.common.app import create_service_app
from services.common.blobs import LocalBlobStore
from services.common.config import CommonSettings
from services.common.identity import ServiceEntry
from services.common.metrics import HTTP_REQUESTS
from tests.support.clients import app_client
from tests.support.images import PNG
from tests.support.tokens import auth_headers

PROBE = ServiceEntry("probe", "/api/v1/probe", "tests.image.test_aborted_upload:drop_mid_body", has_migrations=False)


async def drop_mid_body(app: Any, method: str, path: str, query: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Send half a body, then disconnect; returns the messages the app sent back."""
    incoming = [
        {"type": "http.request", "body": PNG[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "state": {},
    }
    await app(scope, receive, send)
    return sent


def statuses(sent: list[dict[str, Any]]) -> list[int]:
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


async def test_disconnect_during_the_signed_put(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    if not isinstance(image_app.state.images.store, LocalBlobStore):
        pytest.skip("S3 receives the PUT itself")
    issued = (
        await image_client.post(
            "/api/v1/images/scan",
            json={"filename": "a.png", "content_type": "image/png"},
            headers=auth_headers(migrated),
        )
    ).json()
    url = urlsplit(issued["upload_url"])
    capsys.readouterr()
    sent = await drop_mid_body(
        image_app, "PUT", url.path, url.query, {"content-type": "image/png", "content-length": str(len(PNG))}
    )
    assert 500 not in statuses(sent)
    assert "unhandled_error" not in capsys.readouterr().out
    assert await image_app.state.images.store.head(issued["key"], incoming=True) is None  # nothing stored
    # The key is still usable: the client retries the whole PUT.
    retry = await image_client.put(f"{url.path}?{url.query}", content=PNG, headers={"Content-Type": "image/png"})
    assert retry.status_code == 200


async def test_disconnect_while_any_route_reads_its_body(
    migrated: CommonSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    router = APIRouter()

    @router.post("/stream-in")
    async def stream_in(request: Request) -> dict[str, int]:
        total = 0
        async for chunk in request.stream():  # raises ClientDisconnect when the client goes away
            total += len(chunk)
        return {"bytes": total}

    app = create_service_app(PROBE, common=migrated, routers=[router])
    route = "/api/v1/probe/stream-in"
    aborted = HTTP_REQUESTS.labels("probe", "POST", route, "499")
    before = aborted._value.get()
    async with app_client(app):
        capsys.readouterr()
        sent = await drop_mid_body(app, "POST", route, "", {"content-type": "image/png"})
    assert statuses(sent) == []  # nobody is left to answer
    assert "unhandled_error" not in capsys.readouterr().out
    assert aborted._value.get() == before + 1  # counted as 499, not as a 500
