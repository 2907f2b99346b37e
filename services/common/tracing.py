"""OpenTelemetry tracing: one trace from an HTTP request through the outbox, RabbitMQ, consumers,
job workers and model calls.

Off unless configured: with no ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) nothing is
installed, the API's no-op tracer answers every call, and ``eco2 dev`` needs no collector. With an
endpoint, ``configure_tracing`` installs the SDK with a batching OTLP/HTTP exporter (the standard
``OTEL_*`` variables: headers, sampler, resource attributes). Tests install an in-memory exporter
with ``enable_tracing``.

HTTP server spans are FastAPI's own (``fastapi_telemetry``): it continues an incoming ``traceparent``.
Context crosses process boundaries as W3C ``traceparent`` headers: on internal HTTP calls
(``internal_headers``), on job-queue and event messages (AMQP headers), and through the outbox: the
row keeps the context of the transaction that wrote it (``OUTBOX_TRACE_KEY`` inside its JSON
payload), and the relay moves it to the message's headers (it never reaches a consumer's payload).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

__all__ = [
    "OUTBOX_TRACE_KEY",
    "STATE",
    "Span",
    "SpanKind",
    "configure_tracing",
    "enable_tracing",
    "extract",
    "inject",
    "span",
]

TRACER = trace.get_tracer("eco2")
OUTBOX_TRACE_KEY = "_trace"  # the outbox row's copy of its writer's trace context (stripped by the relay)


class _State:
    enabled = False  # a recording tracer provider is installed (OTLP endpoint or a test)


STATE = _State()


def tracing_enabled() -> bool:
    return STATE.enabled


_UNTRACED_PATHS = frozenset({"/health", "/ready", "/metrics"})


def fastapi_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry instrumentation (server span per request named by route template,
    dependency/endpoint/serialization spans), following this module's switch: a request is traced only
    while tracing is on, probes and scrapes never. Metrics stay Prometheus', logs stay structlog's."""

    def untraced(scope: MutableMapping[str, Any]) -> bool:
        return not STATE.enabled or scope.get("path") in _UNTRACED_PATHS

    return {"metrics": False, "logs": False, "exclude": untraced}


def configure_tracing(service: str) -> bool:
    """Install the SDK with an OTLP exporter when an endpoint is configured; True if tracing is on."""
    if STATE.enabled:
        return True
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    enable_tracing(service, BatchSpanProcessor(OTLPSpanExporter()))
    return True


def enable_tracing(service: str, processor: Any) -> Any:
    """Install the SDK tracer provider (once per process) and add ``processor`` to it; returns the provider."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or f"eco2-{service}"}
        provider = TracerProvider(resource=Resource.create(attributes))
        trace.set_tracer_provider(provider)
    provider.add_span_processor(processor)
    STATE.enabled = True
    return provider


def inject(carrier: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """The current trace context as headers (``traceparent``…), added to ``carrier``; empty when off."""
    carrier = {} if carrier is None else carrier
    if STATE.enabled:
        propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, Any] | None) -> Context | None:
    """The context carried by ``carrier`` (headers of a message or request), ``None`` without one."""
    if not STATE.enabled or not carrier:
        return None
    return propagate.extract({str(k): str(v) for k, v in carrier.items() if isinstance(v, str | bytes)})


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A span around the block (current while it runs); ``None`` and no cost when tracing is off.

    An exception leaving the block marks the span as an error and is re-raised."""
    if not STATE.enabled:
        yield None
        return
    with TRACER.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as current:
        yield current


def mark_error(current: Span | None, description: str) -> None:
    if current is not None:
        current.set_status(Status(StatusCode.ERROR, description))


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, ``None`` outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` on every line written inside a span."""
    ids = current_ids()
    if ids is not None:
        event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict
