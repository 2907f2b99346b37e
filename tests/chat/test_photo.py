"""A photo in a chat message, end to end through the runner with the real assistant: the image
service's ``/resolve`` (allow-list, first use, owner), the bytes from the blob store the upload went
to, and scan's vision classification against a local OpenAI-compatible server — one server on one
socket answering both the vision request (``tests/support/fake_openai.py``, structured output) and
the streamed, tool-calling answer (``tests/support/fake_chat_model.py``), as one provider would."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.chat.agent import llm
from services.chat.agent.answerer import Eco2Assistant
from services.chat.agent.build import build_assistant
from services.chat.agent.config import AgentSettings
from services.common.blobs import BlobSettings, BlobStore
from tests.chat.conftest import IMAGE_HOST, Stack, StackFactory
from tests.chat.doubles import client_view
from tests.support.fake_chat_model import FakeChatModel, Reply, default_policy
from tests.support.fake_openai import FakeOpenAI
from tests.support.images import PNG
from tests.support.servers import serve_asgi

NOTE = re.compile(r"사진 속 물건: (\S+)")


def photo_policy(body: dict[str, Any]) -> Reply:
    """A model that reads the photo note the agent adds to the question and looks the item up."""
    last = body["messages"][-1]
    found = NOTE.search(str(last.get("content") or "")) if last["role"] == "user" else None
    if found and body.get("tools"):
        return Reply(tool_calls=[("disposal_guidance", {"item": found.group(1)})])
    return default_policy(body)


@pytest.fixture
def provider() -> Iterator[tuple[str, FakeOpenAI, FakeChatModel]]:
    vision = FakeOpenAI()
    chat = FakeChatModel(policy=photo_policy)

    async def completions(request: Request) -> Response:
        body = await request.json()  # cached on the request: the chosen fake reads it again
        return await (chat.completions if body.get("stream") else vision.completions)(request)

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    with serve_asgi(app) as url:
        yield f"{url}/v1", vision, chat


def blob_env(monkeypatch: pytest.MonkeyPatch, image_settings: Any) -> None:
    """The vision path reads ``IMAGE_*`` from the environment (as a worker pod does): point it at the
    store the test's image service wrote the upload to (moto's bucket in real mode)."""
    for name in BlobSettings.model_fields:
        value = getattr(image_settings, name)
        if value is not None and name in ("s3_bucket", "s3_region", "s3_endpoint_url", "s3_access_key_id",
                                          "s3_secret_access_key", "cdn_base_url", "signing_secret"):  # fmt: skip
            monkeypatch.setenv(f"IMAGE_{name.upper()}", str(value))


async def ask_with_photo(stack: Stack, assistant: Eco2Assistant, message: str) -> list[dict[str, Any]]:
    """Upload a photo as the client does, send it with ``message`` in a new chat, follow the stream."""
    try:
        await stack.start_worker(assistant)
        chat_id = await stack.create_chat()
        image_url = await stack.uploaded()
        job_id = await stack.ask(chat_id, message, image_url=image_url)
        _, events = await stack.stream(job_id)
    finally:
        await assistant.aclose()
    return events


async def test_a_photo_is_classified_and_the_answer_names_the_item(
    make_stack: StackFactory, provider: tuple[str, FakeOpenAI, FakeChatModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, vision, chat = provider
    stack = await make_stack(worker=False)
    blob_env(monkeypatch, stack.image_settings)
    settings = AgentSettings(environment="test", llm_base_url=url, llm_api_key="test-key", llm_model="fake-vlm",
                             llm_max_retries=0, tool_image_url=IMAGE_HOST)  # fmt: skip
    http = httpx.AsyncClient(mounts={IMAGE_HOST: httpx.ASGITransport(app=stack.image_app)})
    closed: list[str] = []
    real_store = llm.create_blob_store

    def recording_store(*args: Any) -> BlobStore:
        store = real_store(*args)
        close = store.close

        async def recorded_close() -> None:
            closed.append(type(store).__name__)
            await close()

        store.close = recorded_close  # type: ignore[method-assign]
        return store

    monkeypatch.setattr(llm, "create_blob_store", recording_store)
    events = await ask_with_photo(stack, build_assistant(stack.common, settings, http=http), "이거 어떻게 버려요?")
    done = events[-1]["data"]
    assert done["status"] == "completed", done
    # The store the vision path opened (an S3 one holds an aiohttp session) was closed with the assistant.
    assert closed == ["S3BlobStore" if stack.image_settings.s3_bucket else "LocalBlobStore"]
    stages = {(f["event"], f["data"]["status"]): f["data"] for f in events if f["event"] not in ("token", "done")}
    assert stages[("vision", "completed")]["result"] == {"item": "생수병", "major": "재활용폐기물",
                                                         "middle": "무색페트병"}  # fmt: skip
    # The uploaded bytes reached the vision model, read from the store the upload went to.
    (request,) = [
        c for c in vision.calls("classification") if "이거 어떻게 버려요?" in json.dumps(c, ensure_ascii=False)
    ]
    sent = [p for m in request["body"]["messages"] if isinstance(m["content"], list) for p in m["content"]]
    images = [p["image_url"]["url"] for p in sent if p.get("type") == "image_url"]
    assert images == [f"data:image/png;base64,{base64.b64encode(PNG).decode()}"]
    # The model was told what the photo shows, looked it up, and the answer names it with its rule.
    # (Only this job's requests: a worker on the shared test queue may also pick up another test's leftovers.)
    (first, *_) = [r for r in chat.requests if "이거 어떻게 버려요?" in str(r["messages"][-1]["content"])]
    assert first["tools"]
    assert "사진 속 물건: 생수병" in first["messages"][-1]["content"]
    answer = done["result"]["answer"]
    assert "생수병" in answer
    assert "무색페트병" in answer
    assert client_view(events) == answer


async def test_without_a_vision_model_the_answer_says_so_and_answers_the_text(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    offline = build_assistant(stack.common, AgentSettings(environment="test"))  # no model configured
    events = await ask_with_photo(stack, offline, "유리병 어떻게 버려요?")
    done = events[-1]["data"]
    assert done["status"] == "completed", done
    assert any(f["event"] == "vision" and f["data"]["status"] == "failed" for f in events)
    answer = done["result"]["answer"]
    assert "사진을 볼 수 있는 기능이 연결되어 있지 않아서" in answer
    assert "유리병" in answer
    assert done["result"]["intent"] == "waste"
    assert client_view(events) == answer
