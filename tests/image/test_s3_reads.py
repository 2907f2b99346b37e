"""``S3BlobStore.read`` on its event-loop path (a locally signed GET URL fetched with aiohttp) answers
as boto3's ``get_object`` did: bytes, a prefix, ``None`` when absent, ``ObjectChanged`` on a version
mismatch; anything else is left to boto3."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.common.blobs import INCOMING, ObjectChanged, S3BlobStore
from tests.support.images import PNG, moto_s3, s3_settings


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


async def test_fast_read_answers_like_get_object(endpoint: str) -> None:
    store = S3BlobStore(s3_settings(endpoint), "https://cdn.test")
    key = f"scan/{uuid.uuid4().hex}.png"
    try:
        assert store._signs_locally()
        await store.put(key, PNG, "image/png")
        store.client.put_object(Bucket=store.bucket, Key=INCOMING + key, Body=PNG[:10], ContentType="image/png")
        assert await store.read(key) == PNG
        assert await store.read(key, limit=8) == PNG[:8]
        assert await store.read(key, incoming=True) == PNG[:10]
        assert await store.read(f"scan/{uuid.uuid4().hex}.png") is None
        info = await store.head(key)
        assert info is not None
        assert await store.read(key, version=info.version) == PNG
        with pytest.raises(ObjectChanged):
            await store.read(key, version='"0123456789abcdef0123456789abcdef"')
        assert store._session is not None  # the reads above went through the event-loop path
    finally:
        await store.close()


async def test_other_answers_go_to_boto3(endpoint: str) -> None:
    """A 404 that is not a missing key (here: no such bucket), like a 403 or a 5xx, is boto3's to judge."""
    store = S3BlobStore(s3_settings(endpoint), "https://cdn.test")
    calls: list[str] = []
    original = store.client.get_object

    def counted(**kwargs: object) -> object:
        calls.append(str(kwargs["Key"]))
        return original(**kwargs)

    store.client.get_object = counted  # type: ignore[method-assign]
    store.bucket = f"missing-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(Exception, match="NoSuchBucket"):
            await store.read("scan/" + "a" * 32 + ".png")
        assert calls == ["scan/" + "a" * 32 + ".png"]
    finally:
        await store.close()


async def test_a_read_url_is_the_one_boto3_presigns(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``presign_get`` signs with botocore's S3 signer directly: at the same instant its URL is the
    one ``generate_presigned_url`` makes, keys needing escapes and the incoming prefix included."""
    import datetime

    import botocore.auth

    instant = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: instant)
    store = S3BlobStore(s3_settings(endpoint), "https://cdn.test")
    try:
        for key, incoming in (("scan/a b+c~d.png", False), (f"scan/{uuid.uuid4().hex}.png", True)):
            params = {"Bucket": store.bucket, "Key": (INCOMING if incoming else "") + key}
            expected = store.client.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
            assert store.presign_get(key, incoming=incoming) == expected
    finally:
        await store.close()
