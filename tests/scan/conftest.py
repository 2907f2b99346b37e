"""The scan service wired for tests: image service in-process (ASGI), the model API as a local HTTP
server on a real socket, the worker as a task of the test's loop.

Real mode: PostgreSQL, Redis Streams, a RabbitMQ work queue named for this test session (deleted at
the end; the broker is shared) and moto's S3 server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.common.config import CommonSettings
from services.common.jobs import RabbitJobQueue, create_job_queue
from services.image.app import create_app as create_image_app
from services.image.config import ImageSettings
from services.scan.app import create_app as create_scan_app
from services.scan.config import ScanSettings
from services.scan.service import ScanService
from services.scan.worker import run_scan_worker
from tests.conftest import REAL
from tests.support.clients import BASE_URL
from tests.support.fake_openai import FakeOpenAI
from tests.support.images import PNG, local_settings, moto_s3, s3_settings, upload_image
from tests.support.servers import serve_asgi
from tests.support.sse import parse_sse
from tests.support.tokens import auth_headers

IMAGE_HOST = "http://image.internal"


@pytest.fixture(scope="session")
def scan_common(migrated: CommonSettings, run_id: str) -> Iterator[CommonSettings]:
    """Common settings with a work-queue name no other test session uses."""
    common = migrated.model_copy(update={"events_namespace": f"eco2test-{run_id}"})
    yield common
    if REAL:
        delete_job_queue(common)


def delete_job_queue(common: CommonSettings) -> None:
    """Remove this namespace's scan work queue from the shared broker."""
    queue = create_job_queue(common, "scan")
    assert isinstance(queue, RabbitJobQueue)

    async def cleanup() -> None:
        await queue.delete()
        await queue.close()

    asyncio.run(cleanup())


@pytest.fixture(scope="session")
def scan_s3() -> Iterator[str | None]:
    if not REAL:
        yield None
        return
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_asgi(fake.app()) as url:
        yield fake, f"{url}/v1"


@dataclass
class Stack:
    common: CommonSettings
    settings: ScanSettings
    image_settings: ImageSettings
    scan: httpx.AsyncClient
    image: httpx.AsyncClient
    app: FastAPI
    llm: FakeOpenAI
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def service(self) -> ScanService:
        return self.app.state.scan

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.common, self.user_id)

    async def uploaded(self, data: bytes = PNG, content_type: str = "image/png") -> str:
        return (await upload_image(self.image, self.common, self.headers, data, content_type))["cdn_url"]

    async def submit(self, user_input: str | None = None, *, image_url: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:  # fmt: skip
        body: dict[str, Any] = {"image_url": image_url or await self.uploaded(), **extra}
        if user_input is not None:
            body["user_input"] = user_input
        return await self.scan.post("/api/v1/scan", json=body, headers={**self.headers, **(headers or {})})

    async def result(self, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll like a patient client until the job is over."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await self.scan.get(f"/api/v1/scan/{job_id}/result", headers=self.headers)
            if response.status_code == 200:
                return dict(response.json())
            assert response.status_code == 202, response.text
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"job {job_id} still processing: {response.json()}")
            await asyncio.sleep(0.05)

    async def stream(
        self, job_id: str, last_event_id: str | None = None
    ) -> tuple[httpx.Response, list[dict[str, Any]]]:
        headers = dict(self.headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = await self.scan.get(f"/api/v1/scan/{job_id}/events", headers=headers)
        return response, parse_sse(response.text)


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(
    scan_common: CommonSettings,
    scan_s3: str | None,
    fake_llm: tuple[FakeOpenAI, str],
) -> AsyncIterator[StackFactory]:
    """``await make_stack(worker=True, model=False, **scan_setting_overrides)``."""
    async with contextlib.AsyncExitStack() as exit_stack:
        llm, llm_url = fake_llm

        async def build(*, worker: bool = True, model: bool = False, image: dict[str, Any] | None = None,
                        **overrides: Any) -> Stack:  # fmt: skip
            llm.latency = {"classification": 0.0, "answer": 0.0}
            llm.fail_next.clear()
            llm.invalid_next.clear()
            image_settings = s3_settings(scan_s3, **(image or {})) if scan_s3 else local_settings(**(image or {}))
            values: dict[str, Any] = {
                "image_service_url": IMAGE_HOST,
                "sweep_interval_seconds": 0.2,
                "worker_concurrency": 16,
            }
            if model:
                values |= {"llm_base_url": llm_url, "llm_api_key": "sk-test", "models": ["fake-vlm", "fake-vlm-mini"]}
            values |= overrides
            settings = ScanSettings(environment="test", **values)
            image_app = await exit_stack.enter_async_context(
                LifespanManager(create_image_app(common=scan_common, settings=image_settings))
            )
            mounts: dict[str, httpx.AsyncBaseTransport] = {IMAGE_HOST: httpx.ASGITransport(app=image_app.app)}
            http = await exit_stack.enter_async_context(httpx.AsyncClient(mounts=mounts))
            image_client = await exit_stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=image_app.app), base_url=BASE_URL)
            )
            app = create_scan_app(common=scan_common, settings=settings, http=http, blob_settings=image_settings)
            manager = await exit_stack.enter_async_context(LifespanManager(app, startup_timeout=60))
            scan_client = await exit_stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=BASE_URL)
            )
            if worker:
                await start_worker(exit_stack, scan_common, settings, http, image_settings)
            return Stack(scan_common, settings, image_settings, scan_client, image_client, app, llm)

        yield build


async def start_worker(exit_stack: contextlib.AsyncExitStack, common: CommonSettings, settings: ScanSettings,
                       http: httpx.AsyncClient, image_settings: ImageSettings) -> Callable[[], Awaitable[None]]:  # fmt: skip
    """Run a scan worker until the test ends; returns a function that kills it (a crash)."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_scan_worker(common, stop, settings=settings, http=http, blob_settings=image_settings)
    )

    async def kill() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def shutdown() -> None:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=15)

    exit_stack.push_async_callback(shutdown)
    await asyncio.sleep(0.05)
    return kill
