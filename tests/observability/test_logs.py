"""Trace and span ids on every structured log line written inside a span; none outside one."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import tracing


def test_log_lines_inside_a_span_carry_its_ids() -> None:
    exporter = InMemorySpanExporter()
    tracing.enable_tracing("test", SimpleSpanProcessor(exporter))
    try:
        assert tracing.add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}
        with tracing.span("work") as current:
            assert current is not None
            line = tracing.add_trace_ids(None, "info", {"event": "inside"})
            headers = tracing.inject()
        context = current.get_span_context()
        assert line["trace_id"] == format(context.trace_id, "032x")
        assert line["span_id"] == format(context.span_id, "016x")
        assert headers["traceparent"].split("-")[1] == line["trace_id"]  # what crosses to the next process
    finally:
        tracing.STATE.enabled = False
        exporter.shutdown()  # later spans of this process are not kept


def test_tracing_off_costs_nothing_and_carries_nothing() -> None:
    assert not tracing.tracing_enabled()
    with tracing.span("work") as current:
        assert current is None
        assert tracing.inject() == {}
    assert tracing.extract({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) is None
