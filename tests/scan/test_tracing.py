"""One trace follows a scan end to end: the submitting request, the job's delivery from the work queue
(RabbitMQ in real mode, trace context in the message headers), each pipeline stage, the model calls,
the reward call to the character service, the outbox row of ``scan.completed``, the relay's publish
and the character consumer. Asserted span by span, parent by parent, with an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common import tracing
from tests.scan.conftest import StackFactory
from tests.support.events import event_workers, eventually

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only (the provider is installed once per process)."""
    if not any(p.span_exporter is _EXPORTER for p in _processors()):
        tracing.enable_tracing("test", SimpleSpanProcessor(_EXPORTER))
    tracing.STATE.enabled = True
    _EXPORTER.clear()
    try:
        yield _EXPORTER
    finally:
        tracing.STATE.enabled = False


def _processors() -> list[SimpleSpanProcessor]:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    active = getattr(provider, "_active_span_processor", None)
    return [p for p in getattr(active, "_span_processors", ()) if isinstance(p, SimpleSpanProcessor)]


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def _descends(child: ReadableSpan, ancestor: ReadableSpan, trace: list[ReadableSpan]) -> bool:
    by_id = {s.context.span_id: s for s in trace if s.context is not None}
    current: ReadableSpan | None = child
    while current is not None and current.parent is not None:
        if ancestor.context is not None and current.parent.span_id == ancestor.context.span_id:
            return True
        current = by_id.get(current.parent.span_id)
    return False


def _parent_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None, f"{child.name} has no parent"
    assert parent.context is not None
    return child.parent.span_id == parent.context.span_id


async def test_a_scan_is_one_trace_from_request_to_reward(
    make_stack: StackFactory, spans: InMemorySpanExporter
) -> None:
    stack = await make_stack(model=True, real_character=True)
    async with event_workers(stack.common, consumers=("character",)):
        submitted = await stack.submit()
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        assert (await stack.result(job_id))["status"] == "completed"

        def trace_of_job() -> list[ReadableSpan]:
            (request,) = [
                s for s in spans.get_finished_spans() if s.name == "POST /api/v1/scan" and s.kind is SpanKind.SERVER
            ]
            assert request.context is not None
            return [
                s for s in spans.get_finished_spans() if s.context and s.context.trace_id == request.context.trace_id
            ]

        async def consumed() -> bool:
            # Both event hops end in other tasks (relay passes, the broker): wait for their spans.
            names = {s.name for s in trace_of_job()}
            return {"scan.completed consume character", "scan.reward_granted publish"} <= names

        await eventually(consumed)
    trace = trace_of_job()

    request = _one(trace, "POST /api/v1/scan")  # FastAPI's server span, named by the route template
    assert request.parent is None
    assert request.kind is SpanKind.SERVER
    job = _one(trace, "scan job")
    assert job.kind is SpanKind.CONSUMER
    assert _descends(job, request, trace)
    assert job.attributes is not None
    assert job.attributes["eco2.job_id"] == job_id
    stages = {stage: _one(trace, f"scan {stage}") for stage in ("vision", "rule", "answer", "reward")}
    for stage in stages.values():
        assert _parent_of(stage, job)
    starts = [stages[name].start_time or 0 for name in ("vision", "rule", "answer", "reward")]
    assert starts == sorted(starts)  # in pipeline order
    classification = _one(trace, "model classification")
    assert classification.kind is SpanKind.CLIENT
    assert _parent_of(classification, stages["vision"])
    assert _parent_of(_one(trace, "model answer"), stages["answer"])
    # The reward call crossed HTTP to the character service: its server span continues the trace.
    reward_call = _one(trace, "POST /internal/v1/character/rewards")
    assert reward_call.kind is SpanKind.SERVER
    assert _parent_of(reward_call, stages["reward"])
    # Inside it, the character service's own outbox → relay → broker hop for its reward event.
    assert _one(trace, "scan.reward_granted publish").kind is SpanKind.PRODUCER
    # scan.completed went through the outbox (context kept on the row) and the broker (message headers).
    publish = _one(trace, "scan.completed publish")
    assert publish.kind is SpanKind.PRODUCER
    assert _parent_of(publish, job)
    consume = _one(trace, "scan.completed consume character")
    assert consume.kind is SpanKind.CONSUMER
    assert _parent_of(consume, publish)
