"""Spans recorded in memory, and the parent links the trace tests assert (scan and chat)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common import tracing

EXPORTER = InMemorySpanExporter()


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test (the provider is installed once per process); off again afterwards."""
    if not any(p.span_exporter is EXPORTER for p in _processors()):
        tracing.enable_tracing("test", SimpleSpanProcessor(EXPORTER))
    tracing.STATE.enabled = True
    EXPORTER.clear()
    try:
        yield EXPORTER
    finally:
        tracing.STATE.enabled = False


def _processors() -> list[SimpleSpanProcessor]:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    active = getattr(provider, "_active_span_processor", None)
    return [p for p in getattr(active, "_span_processors", ()) if isinstance(p, SimpleSpanProcessor)]


def trace_of_request(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """Every finished span of the one trace that the server span ``name`` started."""
    (request,) = [s for s in spans.get_finished_spans() if s.name == name and s.kind is SpanKind.SERVER]
    assert request.context is not None
    return [s for s in spans.get_finished_spans() if s.context and s.context.trace_id == request.context.trace_id]


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def descends(child: ReadableSpan, ancestor: ReadableSpan, trace: list[ReadableSpan]) -> bool:
    by_id = {s.context.span_id: s for s in trace if s.context is not None}
    current: ReadableSpan | None = child
    while current is not None and current.parent is not None:
        if ancestor.context is not None and current.parent.span_id == ancestor.context.span_id:
            return True
        current = by_id.get(current.parent.span_id)
    return False


def parent_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None, f"{child.name} has no parent"
    assert parent.context is not None
    return child.parent.span_id == parent.context.span_id
