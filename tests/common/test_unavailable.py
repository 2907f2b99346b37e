"""A store that is down answers 503 ``SERVICE_UNAVAILABLE`` (docs/api.md, conventions: errors), not a 500.

The live version — PostgreSQL and Redis restarted under load on private servers — is
``bench/scan_faults.py`` (figures in docs/benchmarks.md); here the kernel's mapping is checked with
the exceptions those outages raise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from services.common.app import create_service_app
from services.common.config import CommonSettings
from services.common.identity import ServiceEntry
from tests.support.clients import app_client

PROBE = ServiceEntry("probe", "/api/v1/probe", "tests.common.test_unavailable:router", has_migrations=False)
router = APIRouter()
FAILURES: dict[str, BaseException] = {
    "postgres": OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused")),
    "redis": RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    "socket": ConnectionRefusedError(111, "Connection refused"),
}


@router.get("/store/{name}")
async def store(name: str) -> None:
    raise FAILURES[name]


@router.get("/bug")
async def bug() -> None:
    raise KeyError("a bug stays a 500")


@pytest.fixture
async def client(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(PROBE, common=migrated, routers=[router])
    async with app_client(app) as c:
        yield c


@pytest.mark.parametrize("name", sorted(FAILURES))
async def test_store_outage_is_503(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/api/v1/probe/store/{name}", headers={"Origin": "https://app.eco2.test"})
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"] == "1"
    assert response.headers["access-control-allow-origin"] == "https://app.eco2.test"


async def test_a_bug_is_still_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error", "code": "INTERNAL_ERROR"}


async def test_a_job_waits_through_a_store_outage_without_using_deliveries() -> None:
    from services.common.jobs.queue import run_through_outages

    calls: list[int] = []

    async def handler(job_id: str, delivery: int) -> None:
        calls.append(delivery)
        if len(calls) < 3:
            raise FAILURES["postgres"]

    await run_through_outages(handler, "job", 1)
    assert calls == [1, 1, 1]  # retried in place: still the first delivery

    async def buggy(job_id: str, delivery: int) -> None:
        raise KeyError("a bug is not waited out")

    with pytest.raises(KeyError):
        await run_through_outages(buggy, "job", 1)
