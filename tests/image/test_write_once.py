"""Attacks on the upload URL (issue 12.1): an upload is write-once.

The signed PUT URL stays valid for its whole lifetime. Rewriting the object through it after the
upload was verified or rejected must never change what is served: in the embedded store the PUT is
refused, on S3 (moto's server in real mode) the bytes land in the unserved incoming copy, which the
sweeper deletes. Served files carry the verified type and ``nosniff``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from services.common.blobs import LocalBlobStore, ObjectChanged
from services.common.config import CommonSettings
from services.image.service import ImageService
from tests.support.images import PNG, put_object, upload_image
from tests.support.tokens import auth_headers

HTML = b"<html><script>alert(document.cookie)</script></html>"


def service_of(app: FastAPI) -> ImageService:
    return app.state.images


async def served(app: FastAPI, key: str) -> tuple[bytes | None, str | None]:
    store = service_of(app).store
    info = await store.head(key)
    return await store.read(key), (info.content_type if info else None)


async def test_rewrite_after_verification_never_changes_the_served_object(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    assert await service_of(image_app).store.head(issued["key"]) is None  # pending bytes are not served
    verified = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert verified.status_code == 200
    assert await served(image_app, issued["key"]) == (PNG, "image/png")

    rewrite = await put_object(image_client, migrated, issued["upload_url"], HTML, "image/png")
    if isinstance(service_of(image_app).store, LocalBlobStore):
        assert rewrite.status_code == 412
        assert rewrite.json()["code"] == "UPLOAD_CLOSED"
    else:
        assert rewrite.status_code == 200  # S3 takes it, into the incoming copy only
    assert await served(image_app, issued["key"]) == (PNG, "image/png")
    again = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert again.json()["size_bytes"] == len(PNG)  # verified once, never re-read from the client's copy

    await service_of(image_app).sweep_pending(image_app.state.runtime.db)
    assert issued["key"] not in await service_of(image_app).store.incoming_keys()
    assert await served(image_app, issued["key"]) == (PNG, "image/png")


async def test_rewrite_after_rejection_is_never_served_and_is_swept(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers, data=HTML)
    rejected = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert rejected.json()["code"] == "INVALID_IMAGE_CONTENT"
    store = service_of(image_app).store
    assert issued["key"] not in await store.incoming_keys()  # the rejected object is deleted

    rewrite = await put_object(image_client, migrated, issued["upload_url"], os.urandom(256), "image/png")
    if isinstance(store, LocalBlobStore):
        assert rewrite.status_code == 412
    else:
        assert rewrite.status_code == 200
        assert issued["key"] in await store.incoming_keys()
    assert await store.head(issued["key"]) is None  # never served
    still = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    assert still.json()["code"] == "INVALID_IMAGE_CONTENT"  # a rejected upload stays rejected
    await service_of(image_app).sweep_pending(image_app.state.runtime.db)
    assert issued["key"] not in await store.incoming_keys()


async def test_second_put_before_verification(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    second = await put_object(image_client, migrated, issued["upload_url"], HTML, "image/png")
    if isinstance(service_of(image_app).store, LocalBlobStore):
        assert second.status_code == 412
        assert second.json()["code"] == "OBJECT_EXISTS"
        verified = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
        assert verified.status_code == 200
        assert await served(image_app, issued["key"]) == (PNG, "image/png")
    else:
        # S3 keeps the last PUT while pending; whatever is verified is what gets served.
        rejected = await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
        assert rejected.json()["code"] == "INVALID_IMAGE_CONTENT"
        assert await service_of(image_app).store.head(issued["key"]) is None


async def test_rewrite_between_check_and_promotion_is_not_promoted(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    issued = await upload_image(image_client, migrated, auth_headers(migrated))
    store = service_of(image_app).store
    checked = await store.head(issued["key"], incoming=True)
    assert checked is not None
    # The object is replaced after it was checked (on S3 a second PUT; locally a new file).
    await store.delete_incoming(issued["key"])
    if isinstance(store, LocalBlobStore):
        assert await store.put_incoming(issued["key"], HTML, "image/png")
    else:
        assert (await put_object(image_client, migrated, issued["upload_url"], HTML, "image/png")).status_code == 200
    with pytest.raises(ObjectChanged):
        await store.read(issued["key"], 16, incoming=True, version=checked.version)
    with pytest.raises(ObjectChanged):
        await store.promote(issued["key"], "image/png", checked.version)
    assert await store.head(issued["key"]) is None


async def test_first_read_of_a_pending_upload_verifies_it(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    """The client shows ``cdn_url`` right after its PUT: that read verifies the upload, so what is
    served is checked bytes; bytes that fail the check are rejected, deleted and never served."""
    if not isinstance(service_of(image_app).store, LocalBlobStore):
        pytest.skip("S3 objects are served by the CDN")
    headers = auth_headers(migrated)
    good = await upload_image(image_client, migrated, headers)
    shown = await image_client.get(urlsplit(good["cdn_url"]).path)
    assert (shown.status_code, shown.content, shown.headers["content-type"]) == (200, PNG, "image/png")
    callback = await image_client.post("/api/v1/images/scan/callback", json={"key": good["key"]}, headers=headers)
    assert callback.json()["status"] == "verified"
    bad = await upload_image(image_client, migrated, headers, data=HTML)
    assert (await image_client.get(urlsplit(bad["cdn_url"]).path)).status_code == 404
    refused = await image_client.post("/api/v1/images/scan/callback", json={"key": bad["key"]}, headers=headers)
    assert refused.json()["code"] == "INVALID_IMAGE_CONTENT"
    assert bad["key"] not in await service_of(image_app).store.incoming_keys()


async def test_served_files_carry_the_verified_type_and_security_headers(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    if not isinstance(service_of(image_app).store, LocalBlobStore):
        pytest.skip("S3 objects are served by the CDN (its response-headers policy is in Terraform)")
    headers = auth_headers(migrated)
    issued = await upload_image(image_client, migrated, headers)
    await image_client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    response = await image_client.get(urlsplit(issued["cdn_url"]).path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_cdn_url_names_only_the_verified_copy(
    image_client: httpx.AsyncClient, image_app: FastAPI, migrated: CommonSettings
) -> None:
    """docs/api.md, images: a ``cdn_url`` is not served before verification. The client's bytes land
    under ``incoming/`` (never served: CloudFront may read only SERVED_PREFIXES, see
    tests/infra/test_terraform.py); the key behind the ``cdn_url`` holds nothing until the
    callback promotes exactly the checked bytes to it."""
    from services.common.blobs import INCOMING
    from services.image.service import SERVED_PREFIXES

    headers = auth_headers(migrated)
    store = service_of(image_app).store
    for channel in ("scan", "chat", "my"):
        issued = await upload_image(image_client, migrated, headers, channel=channel)
        key = issued["key"]
        assert key.split("/")[0] in SERVED_PREFIXES
        assert not key.startswith(INCOMING)
        assert urlsplit(issued["cdn_url"]).path.endswith(f"/{key}")
        assert INCOMING not in urlsplit(issued["cdn_url"]).path
        if not isinstance(store, LocalBlobStore):  # S3: the signed PUT writes the incoming copy only
            assert urlsplit(issued["upload_url"]).path.endswith(f"/{INCOMING}{key}")
        assert await store.head(key, incoming=True) is not None
        assert await store.head(key) is None  # what the cdn_url would serve: nothing yet
        verified = await image_client.post(f"/api/v1/images/{channel}/callback", json={"key": key}, headers=headers)
        assert verified.status_code == 200, verified.text
        assert await served(image_app, key) == (PNG, "image/png")
