"""OpenTelemetry set-up: one tracer provider per process, OTLP/HTTP export when configured.

HTTP spans come from the FastAPI instrumentation, Kafka spans from FastStream's telemetry
middleware (W3C ``traceparent`` in Kafka headers), database spans from SQLAlchemy's.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_provider: TracerProvider | None = None


def setup_tracing(
    service: str,
    otlp_endpoint: str = "",
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> TracerProvider:
    """Create (once per process) and install the tracer provider for ``service``."""
    global _provider
    if _provider is not None:
        for processor in extra_processors:
            _provider.add_span_processor(processor)
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "portal"})
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush()


def current_traceparent() -> dict[str, str]:
    """The current W3C trace context as headers (used to carry it through the outbox)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
