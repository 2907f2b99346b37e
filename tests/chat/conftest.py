"""The chat service wired for tests: the image service in-process (ASGI), the worker as a task of the
test's loop with the scripted assistant double (``tests/chat/doubles.py``).

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

from services.chat.app import create_app as create_chat_app
from services.chat.assistant import Assistant
from services.chat.config import ChatSettings
from services.chat.service import ChatService
from services.chat.worker import run_chat_worker
from services.common.config import CommonSettings
from services.common.jobs import RabbitJobQueue, create_job_queue
from services.image.app import create_app as create_image_app
from tests.chat.doubles import ScriptedAssistant
from tests.conftest import REAL
from tests.support.clients import BASE_URL
from tests.support.images import PNG, local_settings, moto_s3, s3_settings, upload_image
from tests.support.sse import parse_sse
from tests.support.tokens import auth_headers

IMAGE_HOST = "http://image.internal"


@pytest.fixture(scope="session")
def chat_common(migrated: CommonSettings, run_id: str) -> Iterator[CommonSettings]:
    common = migrated.model_copy(update={"events_namespace": f"eco2test-{run_id}"})
    yield common
    if REAL:
        queue = create_job_queue(common, "chat")
        assert isinstance(queue, RabbitJobQueue)

        async def cleanup() -> None:
            await queue.delete()
            await queue.close()

        asyncio.run(cleanup())


@pytest.fixture(scope="session")
def chat_s3() -> Iterator[str | None]:
    if not REAL:
        yield None
        return
    with moto_s3() as endpoint:
        yield endpoint


@dataclass
class Stack:
    common: CommonSettings
    settings: ChatSettings
    chat: httpx.AsyncClient
    image: httpx.AsyncClient
    app: FastAPI
    assistant: ScriptedAssistant
    exits: contextlib.AsyncExitStack
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    image_app: Any = None  # the image service's ASGI app (its internal ``/resolve`` too)
    image_settings: Any = None  # its storage: what a vision path must read the uploads from

    @property
    def service(self) -> ChatService:
        return self.app.state.chat

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.common, self.user_id)

    async def create_chat(self, **body: Any) -> str:
        response = await self.chat.post("/api/v1/chat", json=body or None, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def send(self, chat_id: str, message: str = "페트병 어떻게 버려요?", **extra: Any) -> httpx.Response:
        body = {"message": message, "model": "gpt-5.2", **extra}
        return await self.chat.post(f"/api/v1/chat/{chat_id}/messages", json=body, headers=self.headers)

    async def ask(self, chat_id: str, message: str = "페트병 어떻게 버려요?", **extra: Any) -> str:
        response = await self.send(chat_id, message, **extra)
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    async def stream(
        self, job_id: str, last_event_id: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, list[dict[str, Any]]]:
        """Follow the job's stream until it closes (``done``): the frames after ``retry``."""
        sent = dict(headers or self.headers)
        if last_event_id is not None:
            sent["Last-Event-ID"] = last_event_id
        response = await self.chat.get(f"/api/v1/chat/{job_id}/events", headers=sent)
        frames = parse_sse(response.text) if response.status_code == 200 else []
        return response, frames[1:]

    async def history(self, chat_id: str, **params: Any) -> dict[str, Any]:
        response = await self.chat.get(f"/api/v1/chat/{chat_id}", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def uploaded(self) -> str:
        return (await upload_image(self.image, self.common, self.headers, PNG, "image/png", channel="chat"))["cdn_url"]

    async def start_worker(self, assistant: Assistant | None = None, **overrides: Any) -> Callable[[], Awaitable[None]]:
        """Another worker (a second replica, or the one that replaces a crashed one)."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return await start_worker(self.exits, self.common, settings, assistant or self.assistant)


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(chat_common: CommonSettings, chat_s3: str | None) -> AsyncIterator[StackFactory]:
    """``await make_stack(worker=True, **chat_setting_overrides)``."""
    async with contextlib.AsyncExitStack() as exits:

        async def build(*, worker: bool = True, assistant: ScriptedAssistant | None = None, **overrides: Any) -> Stack:
            image_settings = s3_settings(chat_s3) if chat_s3 else local_settings()
            values: dict[str, Any] = {
                "image_service_url": IMAGE_HOST,
                "sweep_interval_seconds": 0.2,
                "worker_concurrency": 16,
                "lease_seconds": 1.0,
            }
            settings = ChatSettings(environment="test", **(values | overrides))
            image_app = await exits.enter_async_context(
                LifespanManager(create_image_app(common=chat_common, settings=image_settings))
            )
            http = await exits.enter_async_context(
                httpx.AsyncClient(mounts={IMAGE_HOST: httpx.ASGITransport(app=image_app.app)})
            )
            image_client = await exits.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=image_app.app), base_url=BASE_URL)
            )
            app = create_chat_app(common=chat_common, settings=settings, http=http)
            manager = await exits.enter_async_context(LifespanManager(app, startup_timeout=60))
            chat_client = await exits.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=BASE_URL)
            )
            double = assistant or ScriptedAssistant()
            stack = Stack(chat_common, settings, chat_client, image_client, app, double, exits,
                          image_app=image_app.app, image_settings=image_settings)  # fmt: skip
            if worker:
                await stack.start_worker()
            return stack

        yield build


async def start_worker(
    exits: contextlib.AsyncExitStack, common: CommonSettings, settings: ChatSettings, assistant: Assistant
) -> Callable[[], Awaitable[None]]:
    """Run a chat worker until the test ends; returns a function that kills it (a crash)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_chat_worker(common, stop, settings=settings, assistant=assistant))

    async def kill() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def shutdown() -> None:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
            await asyncio.wait_for(task, timeout=15)

    exits.push_async_callback(shutdown)
    await asyncio.sleep(0.05)
    return kill
