"""Contract §4: issuing upload URLs, the client's PUT, verification at the callback, the allow-list."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from services.common.clock import utcnow
from services.common.config import CommonSettings
from services.common.domain_events import UserDeleted
from services.common.runtime import ServiceRuntime
from services.image import consumers
from services.image.config import ImageSettings
from services.image.service import ImageService, sniff
from tests.conftest import REAL
from tests.support.events import envelope
from tests.support.images import JPEG, PNG, put_object, upload_image
from tests.support.tokens import auth_headers

INTERNAL = {"X-Internal-Token": "test-internal-token"}


def service_of(app: FastAPI) -> ImageService:
    return app.state.images


async def test_issue_upload_url(image_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    headers = auth_headers(migrated)
    response = await image_client.post(
        "/api/v1/images/scan",
        json={"filename": "../../etc/사진.JPG", "content_type": "image/JPG; charset=binary", "metadata": {"a": 1}},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"key", "upload_url", "cdn_url", "expires_in", "required_headers"}
    assert re.fullmatch(r"scan/[0-9a-f]{32}\.jpg", body["key"])
    assert body["expires_in"] == 900
    assert body["required_headers"] == {"Content-Type": "image/jpeg"}
    assert body["cdn_url"].startswith("https://")
    assert body["cdn_url"].endswith("/" + body["key"])


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [("a.heic", "", "image/heic"), ("x.jpeg", "", "image/jpeg"), ("p", "image/webp", "image/webp")],
)
async def test_content_type_inference(
    image_client: httpx.AsyncClient, migrated: CommonSettings, filename: str, content_type: str, expected: str
) -> None:
    response = await image_client.post(
        "/api/v1/images/chat", json={"filename": filename, "content_type": content_type}, headers=auth_headers(migrated)
    )
    assert response.status_code == 200
    assert response.json()["required_headers"]["Content-Type"] == expected


async def test_issue_errors(image_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    headers = auth_headers(migrated)
    bad_channel = await image_client.post("/api/v1/images/avatar", json={"filename": "a.png"}, headers=headers)
    assert bad_channel.status_code == 400
    assert bad_channel.json()["code"] == "INVALID_CHANNEL"
    for body in ({"filename": "a.pdf", "content_type": ""}, {"filename": "a.png", "content_type": "text/html"}):
        unsupported = await image_client.post("/api/v1/images/my", json=body, headers=headers)
        assert unsupported.status_code == 400
        assert unsupported.json()["code"] == "UNSUPPORTED_CONTENT_TYPE"
    empty = await image_client.post("/api/v1/images/my", json={"filename": ""}, headers=headers)
    assert empty.status_code == 422
    big = await image_client.post(
        "/api/v1/images/my", json={"filename": "a.png", "metadata": {"x": "y" * 3000}}, headers=headers
    )
    assert big.status_code == 422
    anonymous = await image_client.post("/api/v1/images/my", json={"filename": "a.png"})
    assert anonymous.status_code == 401


async def test_put_then_callback_verifies(image_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    callback = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert callback.status_code == 200, callback.text
    assert callback.json() == {
        "key": issued["key"],
        "channel": "scan",
        "cdn_url": issued["cdn_url"],
        "content_type": "image/png",
        "size_bytes": len(PNG),
        "status": "verified",
    }
    again = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert again.status_code == 200


async def test_callback_not_found_for_other_user_or_channel(
    image_client: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    for channel, who, key in (
        ("scan", auth_headers(migrated), issued["key"]),
        ("chat", headers, issued["key"]),
        ("scan", headers, "scan/" + "0" * 32 + ".png"),
        ("scan", headers, "../../etc/passwd"),
    ):
        response = await image_client.post(f"/api/v1/images/{channel}/callback", json={"key": key}, headers=who)
        assert response.status_code == 404
        assert response.json()["code"] == "UPLOAD_NOT_FOUND"


async def test_callback_before_upload_is_incomplete_then_succeeds(
    image_client: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    headers = auth_headers(migrated)
    issued = (
        await image_client.post(
            "/api/v1/images/scan", json={"filename": "a.jpg", "content_type": "image/jpeg"}, headers=headers
        )
    ).json()
    early = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert early.status_code == 400
    assert early.json()["code"] == "UPLOAD_INCOMPLETE"
    assert (await put_object(image_client, migrated, issued["upload_url"], JPEG, "image/jpeg")).status_code == 200
    late = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert late.status_code == 200
    assert late.json()["size_bytes"] == len(JPEG)


async def test_wrong_magic_bytes_rejects_and_deletes(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers, data=b"<html>not an image</html>")
    response = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_IMAGE_CONTENT"
    assert await service_of(image_app).store.head(issued["key"]) is None
    again = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert again.json()["code"] == "INVALID_IMAGE_CONTENT"
    # A JPEG declared as PNG is refused too: the magic bytes must match the signed type.
    swapped = await upload_image(image_client, migrated, headers, data=JPEG, content_type="image/png")
    mismatch = await image_client.post("/api/v1/images/scan/callback", json={"key": swapped["key"]}, headers=headers)
    assert mismatch.json()["code"] == "INVALID_IMAGE_CONTENT"


async def test_too_large_rejects(
    migrated: CommonSettings, image_settings: ImageSettings, image_app: FastAPI, image_client: httpx.AsyncClient
) -> None:
    headers = auth_headers(migrated)
    image_settings.max_bytes = 1024  # the same check as 10 MB, without moving 10 MB around
    issued = await upload_image(image_client, migrated, headers, data=PNG + bytes(2000))
    response = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "FILE_TOO_LARGE"
    assert await service_of(image_app).store.head(issued["key"]) is None


def test_sniffing() -> None:
    assert sniff(PNG) == "image/png"
    assert sniff(JPEG) == "image/jpeg"
    assert sniff(b"GIF89a" + bytes(10)) == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    heic = (24).to_bytes(4, "big") + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    assert sniff(heic) == "image/heif"
    avif = (24).to_bytes(4, "big") + b"ftypavif" + b"\x00\x00\x00\x00" + b"avifmiaf"
    assert sniff(avif) is None
    assert sniff(b"\x00" * 32) is None


@pytest.mark.skipif(REAL, reason="the embedded store's own signed PUT (S3 signs its own)")
async def test_local_put_signature_checks(image_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    headers = auth_headers(migrated)
    issued = (
        await image_client.post(
            "/api/v1/images/scan", json={"filename": "a.png", "content_type": "image/png"}, headers=headers
        )
    ).json()
    parts = urlsplit(issued["upload_url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = dict(query, signature="0" * 64)
    other_type = dict(query, content_type="image/gif")
    expired = dict(query, expires="1000")
    for params, sent_type in (
        (tampered, "image/png"),
        (other_type, "image/gif"),
        (expired, "image/png"),
        (query, "image/gif"),
    ):
        response = await image_client.put(
            f"{parts.path}?{urlencode(params)}", content=PNG, headers={"Content-Type": sent_type}
        )
        assert response.status_code == 403, params
    ok = await image_client.put(f"{parts.path}?{parts.query}", content=PNG, headers={"Content-Type": "image/png"})
    assert ok.status_code == 200
    served = await image_client.get(urlsplit(issued["cdn_url"]).path)
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert (await image_client.get("/api/v1/images/files/scan/evil.txt")).status_code == 404


@pytest.mark.skipif(REAL, reason="the embedded store's own PUT cap")
async def test_local_put_cap(
    image_client: httpx.AsyncClient, migrated: CommonSettings, image_settings: ImageSettings
) -> None:
    image_settings.local_put_cap_bytes = 100
    headers = auth_headers(migrated)
    issued = (await image_client.post("/api/v1/images/scan", json={"filename": "a.png"}, headers=headers)).json()
    response = await put_object(image_client, migrated, issued["upload_url"], PNG + bytes(200), "image/png")
    assert response.status_code == 413


async def test_resolve_allow_list(image_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    cdn = issued["cdn_url"]
    parts = urlsplit(cdn)
    refused = [
        "https://evil.example.com/" + issued["key"],
        cdn.replace("https://", "http://"),
        f"https://{parts.hostname}:8443{parts.path}",
        cdn + "?x=1",
        f"https://user@{parts.hostname}{parts.path}",
        cdn.rsplit("/", 1)[0] + "/../secret.png",
        cdn.rsplit("/", 2)[0] + "/scan/" + "a" * 32 + ".png",  # well-formed but never issued
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "not a url",
        "https://[::1/x",
    ]
    for url in refused:
        response = await image_client.post("/internal/v1/images/resolve", json={"image_url": url}, headers=INTERNAL)
        assert response.status_code == 400, url
        assert response.json()["code"] == "IMAGE_URL_NOT_ALLOWED", url
    # First use of a pending upload verifies it on the spot.
    ok = await image_client.post("/internal/v1/images/resolve", json={"image_url": cdn}, headers=INTERNAL)
    assert ok.status_code == 200
    assert ok.json()["status"] == "verified"
    no_token = await image_client.post("/internal/v1/images/resolve", json={"image_url": cdn})
    assert no_token.status_code == 401
    assert no_token.json()["code"] == "INTERNAL_AUTH_FAILED"
    wrong = await image_client.post(
        "/internal/v1/images/resolve", json={"image_url": cdn}, headers={"X-Internal-Token": "nope"}
    )
    assert wrong.status_code == 401
    schema = (await image_client.get("/api/v1/images/openapi.json")).json()
    assert not any(path.startswith("/internal") for path in schema["paths"])


async def test_pending_uploads_expire(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings, image_settings: ImageSettings
) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    service = service_of(image_app)
    image_settings.pending_ttl_seconds = -1
    assert await service.sweep_pending(image_app.state.runtime.db) >= 1
    assert await service.store.head(issued["key"]) is None
    response = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "UPLOAD_INCOMPLETE"


async def test_user_deleted_removes_objects_and_records(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings, image_settings: ImageSettings
) -> None:
    user_id = uuid.uuid4()
    headers = auth_headers(migrated, user_id)
    issued = await upload_image(image_client, migrated, headers)
    runtime = ServiceRuntime("image", "image", migrated)
    try:
        (subscription,) = consumers.build(runtime, image_settings)
        event = envelope(UserDeleted(user_id=user_id, deleted_at=utcnow()), "my")
        await subscription.handler(event)
        await subscription.handler(event)  # redelivery is a no-op
    finally:
        await runtime.close()
    assert await service_of(image_app).store.head(issued["key"]) is None
    response = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert response.status_code == 404


@pytest.mark.real_only
async def test_s3_presigned_put_signs_only_content_type(
    image_client: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    issued = (
        await image_client.post("/api/v1/images/scan", json={"filename": "a.png"}, headers=auth_headers(migrated))
    ).json()
    query = parse_qs(urlsplit(issued["upload_url"]).query)
    assert query["X-Amz-SignedHeaders"] == ["content-type;host"]  # host is part of every SigV4 URL
    assert int(query["X-Amz-Expires"][0]) == 900
