"""Image storage for tests: moto's S3 server in real mode (boto3 speaks real HTTP to it), the local
directory store otherwise; and helpers that upload exactly as the mobile client does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import boto3
import httpx
from moto.server import ThreadedMotoServer

from services.common.config import CommonSettings
from services.image.config import ImageSettings
from tests.support.servers import free_port

CDN_BASE = "https://cdn.eco2.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)


@contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_settings(endpoint: str, **overrides: object) -> ImageSettings:
    bucket = f"eco2-test-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="ap-northeast-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    values: dict[str, object] = {
        "s3_bucket": bucket,
        "s3_region": "ap-northeast-2",
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
        "cdn_base_url": CDN_BASE,
    }
    values.update(overrides)
    return ImageSettings(environment="test", **values)  # type: ignore[arg-type]


def local_settings(**overrides: object) -> ImageSettings:
    values: dict[str, object] = {"signing_secret": "test-image-signing-secret"}
    values.update(overrides)
    return ImageSettings(environment="test", **values)  # type: ignore[arg-type]


async def put_object(client: httpx.AsyncClient, common: CommonSettings, upload_url: str, data: bytes,
                     content_type: str) -> httpx.Response:  # fmt: skip
    """PUT the bytes with only ``Content-Type``, as the mobile client does."""
    headers = {"Content-Type": content_type}
    if upload_url.startswith(common.public_api_base_url):
        parts = urlsplit(upload_url)  # the embedded store is this backend: go through the test client
        return await client.put(f"{parts.path}?{parts.query}", content=data, headers=headers)
    async with httpx.AsyncClient() as raw:
        return await raw.put(upload_url, content=data, headers=headers)


async def upload_image(client: httpx.AsyncClient, common: CommonSettings, headers: dict[str, str],
                       data: bytes = PNG, content_type: str = "image/png", channel: str = "scan") -> dict[str, str]:  # fmt: skip
    issued = await client.post(
        f"/api/v1/images/{channel}", json={"filename": "photo.png", "content_type": content_type}, headers=headers
    )
    assert issued.status_code == 200, issued.text
    body = issued.json()
    put = await put_object(client, common, body["upload_url"], data, content_type)
    assert put.status_code == 200, put.text
    return body
