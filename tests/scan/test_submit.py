"""Submission rules (docs/api.md: scan submission, images allow-list, rate limits): allow-list, verification on first use,
idempotency, rate limits, ownership."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from services.scan.service import JOBS, KEYS
from tests.scan.conftest import StackFactory
from tests.support.images import JPEG, PNG, put_object, upload_image
from tests.support.tokens import auth_headers


async def test_image_url_allow_list(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    good = await stack.uploaded()
    host = urlsplit(good).hostname
    for url in (
        "https://evil.example.com/scan/" + "a" * 32 + ".png",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://127.0.0.1:5432/",
        good.replace("https://", "http://"),
        f"https://{host}/scan/" + "b" * 32 + ".png",  # well-formed, never issued
        good + "#x",
        "gopher://example.com/",
        "   ",
    ):
        response = await stack.submit("생수병", image_url=url)
        if url.strip() == "":
            assert response.status_code == 422
            continue
        assert response.status_code == 400, url
        assert response.json()["code"] == "IMAGE_URL_NOT_ALLOWED", url


async def test_another_users_upload_is_not_allowed(make_stack: StackFactory) -> None:
    """Attack (issue 12.4): scanning with someone else's ``cdn_url`` — verified or still pending —
    is refused as IMAGE_URL_NOT_ALLOWED, and never verifies their upload."""
    stack = await make_stack(worker=False)
    verified = await stack.uploaded()
    assert (await stack.submit("생수병", image_url=verified)).status_code == 202  # the owner may
    pending = await stack.uploaded()
    stranger = auth_headers(stack.common)
    for url in (verified, pending):
        response = await stack.scan.post("/api/v1/scan", json={"image_url": url}, headers=stranger)
        assert (response.status_code, response.json()["code"]) == (400, "IMAGE_URL_NOT_ALLOWED"), url
    callback = await stack.image.post(
        "/api/v1/images/scan/callback",
        json={"key": pending.rsplit("/", 2)[-2] + "/" + pending.rsplit("/", 1)[-1]},
        headers=stack.headers,
    )
    assert callback.status_code == 200  # the owner's first verification happens now, not before
    assert (await stack.submit("생수병", image_url=pending)).status_code == 202


async def test_first_use_verification(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, image={"max_bytes": 1024})
    headers = stack.headers

    async def issued() -> dict[str, str]:
        response = await stack.image.post("/api/v1/images/scan", json={"filename": "a.png"}, headers=headers)
        return response.json()

    missing = await issued()
    response = await stack.submit("생수병", image_url=missing["cdn_url"])
    assert (response.status_code, response.json()["code"]) == (400, "UPLOAD_INCOMPLETE")

    fake = await issued()
    await put_object(stack.image, stack.common, fake["upload_url"], b"MZ\x90\x00 not an image", "image/png")
    response = await stack.submit("생수병", image_url=fake["cdn_url"])
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_IMAGE_CONTENT")

    large = await issued()
    await put_object(stack.image, stack.common, large["upload_url"], PNG + bytes(4096), "image/png")
    response = await stack.submit("생수병", image_url=large["cdn_url"])
    assert (response.status_code, response.json()["code"]) == (400, "FILE_TOO_LARGE")

    ok = await issued()
    await put_object(stack.image, stack.common, ok["upload_url"], PNG, "image/png")
    assert (await stack.submit("생수병", image_url=ok["cdn_url"])).status_code == 202  # never called back


async def test_idempotent_submit(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, rate_per_window=2)
    url = await stack.uploaded()
    key = {"X-Idempotency-Key": "scan-" + uuid.uuid4().hex}
    first = await stack.submit("생수병", image_url=url, headers=key)
    assert first.status_code == 202
    for _ in range(3):  # replays return the first answer and cost nothing
        replay = await stack.submit("생수병", image_url=url, headers=key)
        assert replay.status_code == 202
        assert replay.json() == first.json()
    other = await stack.submit("소주병", image_url=url, headers=key)
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    # The same key of another user is another key.
    other_user = auth_headers(stack.common)
    own_url = (await upload_image(stack.image, stack.common, other_user))["cdn_url"]
    stranger = await stack.scan.post(
        "/api/v1/scan", json={"image_url": own_url, "user_input": "생수병"}, headers={**other_user, **key}
    )
    assert stranger.status_code == 202
    assert stranger.json()["job_id"] != first.json()["job_id"]
    assert (await stack.submit("생수병", image_url=url)).status_code == 202  # second unit of 2
    for bad in ("", "x" * 129, "has space", "한글"):
        response = await stack.scan.post(
            "/api/v1/scan",
            json={"image_url": url},
            headers={**stack.headers, "X-Idempotency-Key": bad.encode("utf-8")},
        )
        assert response.status_code == 422, bad


async def test_rate_limit_rolling_window(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, rate_per_window=2, rate_window_seconds=60)
    url = await stack.uploaded()
    assert (await stack.submit("생수병", image_url=url)).status_code == 202
    assert (await stack.submit("생수병", image_url=url)).status_code == 202
    limited = await stack.submit("생수병", image_url=url)
    assert (limited.status_code, limited.json()["code"]) == (429, "RATE_LIMITED")
    retry_after = limited.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60
    limited_key = await stack.submit("생수병", image_url=url, headers={"X-Idempotency-Key": "k-" + uuid.uuid4().hex})
    assert limited_key.status_code == 429  # a new key is a new request


async def test_rate_limit_per_day(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, rate_per_window=100, rate_per_day=1)
    url = await stack.uploaded()
    assert (await stack.submit("생수병", image_url=url)).status_code == 202
    limited = await stack.submit("생수병", image_url=url)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 24 * 3600  # until Seoul midnight


async def test_only_the_owner_sees_a_job(make_stack: StackFactory) -> None:
    stack = await make_stack()
    job_id = (await stack.submit("생수병")).json()["job_id"]
    await stack.result(job_id)
    stranger = auth_headers(stack.common)
    for path in (f"/api/v1/scan/{job_id}/result", f"/api/v1/scan/{job_id}/events"):
        response = await stack.scan.get(path, headers=stranger)
        assert (response.status_code, response.json()["code"]) == (404, "JOB_NOT_FOUND")
    for job in (str(uuid.uuid4()), "not-a-uuid"):
        for suffix in ("result", "events"):
            response = await stack.scan.get(f"/api/v1/scan/{job}/{suffix}", headers=stack.headers)
            assert (response.status_code, response.json()["code"]) == (404, "JOB_NOT_FOUND")
    assert (await stack.scan.get(f"/api/v1/scan/{job_id}/result")).status_code == 401


@pytest.mark.parametrize("body", [{}, {"image_url": "x" * 2049}, {"image_url": "https://a", "user_input": "가" * 501}])
async def test_invalid_bodies(make_stack: StackFactory, body: dict[str, str]) -> None:
    stack = await make_stack(worker=False)
    response = await stack.scan.post("/api/v1/scan", json=body, headers=stack.headers)
    assert response.status_code == 422


async def test_jpeg_upload_scans(make_stack: StackFactory) -> None:
    stack = await make_stack()
    url = await stack.uploaded(JPEG, "image/jpeg")
    result = await stack.result((await stack.submit("  소주병  ", image_url=url)).json()["job_id"])
    assert result["pipeline_result"]["classification_result"]["classification"]["minor_category"] == "소주병"


async def test_requests_the_direct_handler_leaves_to_fastapi_are_answered_as_declared(make_stack: StackFactory) -> None:
    """Submit's direct handler (services.common.routes) takes a plain JSON body; a ``+json`` type goes
    through FastAPI's own handler — same answer. No token: 401 either way, also with an invalid body
    (FastAPI solves the token's dependency before the body)."""
    stack = await make_stack(worker=False)
    body = json.dumps({"image_url": await stack.uploaded(), "user_input": "생수병"})
    answers = [
        await stack.scan.post("/api/v1/scan", content=body, headers={**stack.headers, "Content-Type": content_type})
        for content_type in ("application/json; charset=utf-8", "application/vnd.eco2+json")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert [sorted(a.json()) for a in answers] == [["job_id", "result_url", "status", "stream_url"]] * 2
    for payload in ({"image_url": "https://a"}, {}):
        assert (await stack.scan.post("/api/v1/scan", json=payload)).status_code == 401


async def test_a_job_whose_enqueue_fails_is_accepted_and_run_by_the_sweeper(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack(requeue_after_seconds=0.3)
    refused: list[str] = []

    async def broker_away(job_id: str) -> None:
        refused.append(job_id)
        monkeypatch.undo()  # the next publish (the sweeper's) goes through
        raise ConnectionError("broker away")

    monkeypatch.setattr(stack.service.queue, "enqueue", broker_away)
    accepted = await stack.submit("생수병")
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    result = await stack.result(job_id)  # the worker's sweeper re-enqueued it
    assert result["status"] == "completed"
    assert refused == [job_id]  # its own publish was the one refused (logged: tests/common/test_job_queue.py)


async def test_a_submit_whose_event_cannot_be_stored_leaves_no_job(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack(worker=False)
    url = await stack.uploaded()

    async def redis_away(*args: object, **kwargs: object) -> None:
        raise ConnectionError("event log away")

    monkeypatch.setattr(stack.service.events, "append", redis_away)
    refused = await stack.submit("생수병", image_url=url, headers={"X-Idempotency-Key": "k-" + uuid.uuid4().hex})
    assert (refused.status_code, refused.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
    async with stack.service.db.autocommit() as conn:  # the row and its key, stored beside the event, are gone
        jobs = await conn.scalar(select(func.count()).select_from(JOBS).where(JOBS.c.user_id == stack.user_id))
        keys = await conn.scalar(select(func.count()).select_from(KEYS).where(KEYS.c.user_id == stack.user_id))
    assert (jobs, keys) == (0, 0)
    monkeypatch.undo()
    assert (await stack.submit("생수병", image_url=url)).status_code == 202  # and nothing else was held back
