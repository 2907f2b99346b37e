"""One trace follows a chat message: the submitting request, the job's delivery from the work queue
(RabbitMQ in real mode, trace context in the message headers), the assistant's stages and, inside the
``answer`` stage, the tool-calling model's streamed calls (the real ``openai`` SDK against a local
streaming server) and the lookup stage of the tool it called. The model calls carry the kernel's
model metrics (``ai.model_call``), like scan's provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from services.chat.agent.answerer import DONE_MESSAGE
from services.chat.agent.build import build_assistant
from services.chat.agent.config import AgentSettings
from tests.chat.conftest import StackFactory
from tests.support.events import eventually
from tests.support.fake_chat_model import FakeChatModel
from tests.support.servers import serve_asgi
from tests.support.tracing import descends, one, parent_of, recording, trace_of_request

REQUEST = "POST /api/v1/chat/{chat_id}/messages"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


@pytest.fixture
def fake() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def model_url(fake: FakeChatModel) -> Iterator[str]:
    with serve_asgi(fake.app()) as url:
        yield f"{url}/v1"


async def finished_trace(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    """The message's trace once the delivery's span ended (``done`` goes out just before it does)."""

    async def delivered() -> bool:
        return any(s.name == "chat job" for s in trace_of_request(spans, REQUEST))

    await eventually(delivered)
    return trace_of_request(spans, REQUEST)


def model_calls(outcome: str) -> float:
    labels = {"provider": "openai", "operation": "chat", "outcome": outcome}
    return REGISTRY.get_sample_value("eco2_model_request_duration_seconds_count", labels) or 0.0


def model_errors(kind: str) -> float:
    labels = {"provider": "openai", "operation": "chat", "kind": kind}
    return REGISTRY.get_sample_value("eco2_model_errors_total", labels) or 0.0


async def ask_with_model(make_stack: StackFactory, services_http: httpx.AsyncClient, model_url: str,
                         question: str) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    stack = await make_stack(worker=False)
    settings = AgentSettings(
        environment="test", llm_base_url=model_url, llm_api_key="test-key", llm_model="fake-default",
        llm_max_retries=0, tool_location_url="http://services", tool_my_url="http://services",
    )  # fmt: skip
    assistant = build_assistant(stack.common, settings, http=services_http)
    assert assistant.llm is not None
    try:
        await stack.start_worker(assistant)
        job_id = await stack.ask(await stack.create_chat(), question)
        _, events = await stack.stream(job_id)
    finally:
        await assistant.aclose()
    return job_id, events


async def test_a_chat_message_is_one_trace_from_request_to_model_call(
    make_stack: StackFactory, services_http: httpx.AsyncClient, model_url: str, spans: InMemorySpanExporter
) -> None:
    ok_before = model_calls("ok")
    job_id, events = await ask_with_model(make_stack, services_http, model_url, "고철 시세 얼마야?")
    done = events[-1]["data"]
    assert done["status"] == "completed", done
    assert done["message"] == DONE_MESSAGE  # the model answered, not the offline fallback
    assert done["result"]["intent"] == "recyclable_price"
    trace = await finished_trace(spans)

    request = one(trace, REQUEST)  # FastAPI's server span, named by the route template
    assert request.parent is None
    job = one(trace, "chat job")
    assert job.kind is SpanKind.CONSUMER
    assert descends(job, request, trace)
    assert job.attributes is not None
    assert job.attributes["eco2.job_id"] == job_id
    intent, answer = one(trace, "chat intent"), one(trace, "chat answer")
    assert parent_of(intent, job)
    assert parent_of(answer, job)
    assert (intent.start_time or 0) < (answer.start_time or 0)
    assert answer.attributes is not None
    assert answer.attributes["eco2.stage"] == "answer"
    # Two streamed completions (the tool call, then the answer with its result), then the tool's stage.
    calls = sorted((s for s in trace if s.name == "model chat"), key=lambda s: s.start_time or 0)
    assert len(calls) == 2, sorted(s.name for s in trace)
    for call in calls:
        assert call.kind is SpanKind.CLIENT
        assert parent_of(call, answer)
        assert call.attributes is not None
        assert call.attributes["gen_ai.request.model"] == "fake-default"
        assert call.attributes["eco2.provider"] == "openai"
    lookup = one(trace, "chat recyclable_price")
    assert parent_of(lookup, answer)
    assert (calls[0].end_time or 0) <= (lookup.start_time or 0) <= (calls[1].start_time or 0)
    assert model_calls("ok") - ok_before == 2


async def test_a_failing_model_call_is_counted_and_marked_on_its_span(
    make_stack: StackFactory, services_http: httpx.AsyncClient, model_url: str, fake: FakeChatModel,
    spans: InMemorySpanExporter,
) -> None:  # fmt: skip
    fake.fail_next = 1  # HTTP 500 (no SDK retries): the offline answer replies instead
    errors_before, failed_before = model_errors("status_5xx"), model_calls("error")
    _, events = await ask_with_model(make_stack, services_http, model_url, "페트병 어떻게 버려요?")
    assert events[-1]["data"]["status"] == "completed"
    assert model_errors("status_5xx") - errors_before == 1
    assert model_calls("error") - failed_before == 1
    trace = await finished_trace(spans)
    call = one(trace, "model chat")
    assert call.status.status_code is StatusCode.ERROR
    # The model's answer stage failed; the offline answer is a second, completed answer stage.
    answers = sorted((s for s in trace if s.name == "chat answer"), key=lambda s: s.start_time or 0)
    assert [s.status.status_code for s in answers] == [StatusCode.ERROR, StatusCode.UNSET]
    assert parent_of(call, answers[0])
    assert parent_of(one(trace, "chat waste_rag"), one(trace, "chat job"))
