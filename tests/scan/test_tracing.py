"""One trace follows a scan end to end: the submitting request, the job's delivery from the work queue
(RabbitMQ in real mode, trace context in the message headers), each pipeline stage, the model calls,
the reward decided in the finishing transaction with the outbox row of ``scan.reward_granted``, the
relay's publish and the my consumer. Asserted span by span, parent by parent, with an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.scan.conftest import StackFactory
from tests.support.events import event_workers, eventually
from tests.support.tracing import descends as _descends
from tests.support.tracing import one as _one
from tests.support.tracing import parent_of as _parent_of
from tests.support.tracing import recording


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


async def test_a_scan_is_one_trace_from_request_to_reward(
    make_stack: StackFactory, spans: InMemorySpanExporter
) -> None:
    stack = await make_stack(model=True)
    async with event_workers(stack.common, consumers=("my",)):
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
            return {"scan.reward_granted consume my", "scan.reward_granted publish"} <= names

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
    # scan.reward_granted went through the outbox (context kept on the row, written inside the reward
    # stage) and the broker (message headers) to the my service.
    publish = _one(trace, "scan.reward_granted publish")
    assert publish.kind is SpanKind.PRODUCER
    assert _parent_of(publish, stages["reward"])
    consume = _one(trace, "scan.reward_granted consume my")
    assert consume.kind is SpanKind.CONSUMER
    assert _parent_of(consume, publish)
