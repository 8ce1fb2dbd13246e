"""OpenTelemetry set-up: one tracer provider per process, OTLP/HTTP export when configured.

HTTP spans come from the FastAPI instrumentation, one producer span per outbox relay round
from ``relay.py`` (W3C ``traceparent`` in Kafka headers), one span per consumed batch from
``consumer.py`` (linked to each message's own trace context), database statement spans from
SQLAlchemy's when ``TRACE_SQL_STATEMENTS`` is on, outgoing HTTP from httpx's, object storage and
OpenSearch spans from ``storage.py`` and ``opensearch.py``.

Sampling is parent-based: a span follows its parent's decision (a partner's request, an upstream
event), and a new trace is kept with probability ``TRACE_SAMPLE_RATIO`` (1.0 keeps everything).
Attributes follow the OpenTelemetry semantic conventions (the stable HTTP and database ones),
plus the portal's own ``portal.article.*`` attributes wherever an article is concerned, so that
one article's spans can be found by its id in the trace backend.
"""

from __future__ import annotations

import os
import re
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from portal_contracts.envelope import Envelope

# The portal's own span attributes (a product prefix, as the conventions ask for custom ones).
ARTICLE_ID = "portal.article.id"
ARTICLE_SOURCE = "portal.article.source"
ARTICLE_REVISION = "portal.article.revision"

# Path segments that are secrets: a private status link ("/v1/status/<token>" on engagement,
# ".../trang-thai/<token>" on the website) lets whoever has it follow a submission. They are
# replaced in span attributes and log lines; the route template keeps its "{token}".
_PRIVATE_PATH = re.compile(r"(/(?:v1/status|trang-thai)/)(?!\{token\})[^/?#\s\"']+")
REDACTED = "[redacted]"
_URL_ATTRIBUTES = ("url.path", "url.full", "url.original", "http.target", "http.url")

_provider: TracerProvider | None = None
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def resource_for(service: str, instance_id: str = "") -> Resource:
    attributes = {
        "service.name": service,
        "service.namespace": "portal",
        "deployment.environment.name": os.environ.get("DEPLOYMENT_ENVIRONMENT", "local"),
    }
    if instance_id:  # which of the service's processes (several run side by side)
        attributes["service.instance.id"] = instance_id
    return Resource.create(attributes)


def use_stable_conventions() -> None:
    """The stable HTTP and database conventions (http.request.method, db.system.name, ...),
    read once per process by the instrumentations before they first instrument anything."""
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")


def sampler_for(ratio: float) -> Sampler:
    """Parent-based: follow the caller's decision; a new trace is kept with ``ratio``."""
    return ParentBased(TraceIdRatioBased(min(1.0, max(0.0, ratio))))


def setup_tracing(
    service: str,
    otlp_endpoint: str = "",
    extra_processors: tuple[SpanProcessor, ...] = (),
    sample_ratio: float = 1.0,
    instance_id: str = "",
) -> TracerProvider:
    """Create (once per process) and install the tracer provider for ``service``."""
    global _provider
    if _provider is not None:
        for processor in extra_processors:
            _provider.add_span_processor(processor)
        return _provider
    use_stable_conventions()
    provider = TracerProvider(
        resource=resource_for(service, instance_id), sampler=sampler_for(sample_ratio)
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


def scrub_private_paths(text: str) -> str:
    """``text`` with every private status token replaced by ``[redacted]``."""
    return _PRIVATE_PATH.sub(rf"\g<1>{REDACTED}", text)


def scrub_span(span: trace.Span, *_: Any) -> None:
    """Replace private tokens in a live span's URL attributes and name (an instrumentation
    hook: it runs after the instrumentation set them, before the span ends)."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and (clean := scrub_private_paths(value)) != value:
            span.set_attribute(key, clean)
    name = getattr(span, "name", None)
    if isinstance(name, str) and (clean := scrub_private_paths(name)) != name:
        span.update_name(clean)


async def _scrub_span_async(span: trace.Span, *_: Any) -> None:
    scrub_span(span)


def instrument_http_clients() -> None:
    """Outgoing HTTP calls (httpx: peers, feeds, images) become client spans, once per process."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=scrub_span, async_request_hook=_scrub_span_async)


def shutdown_tracing(timeout_s: float = 5.0) -> None:
    # Bounded: an unreachable collector must not hold a stopping process past its grace
    # period (the exporter would retry for 30 s by default).
    if _provider is not None:
        _provider.force_flush(timeout_millis=int(timeout_s * 1000))


def current_traceparent(context: Context | None = None) -> dict[str, str]:
    """The current (or ``context``'s) W3C trace context as headers, carried through the outbox."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def context_from_headers(headers: tuple[tuple[str, bytes], ...]) -> Context:
    """The trace context a Kafka message carries in its headers (empty when it has none)."""
    carrier = {
        key: value.decode("latin-1")
        for key, value in headers
        if key in ("traceparent", "tracestate", "baggage") and value is not None
    }
    return propagate.extract(carrier) if carrier else Context()


def parse_traceparent(value: str | bytes | None) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a W3C ``traceparent`` header, or None when absent or invalid."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _TRACEPARENT.match(text.strip().lower())
    if match is None or set(match.group(1)) == {"0"}:
        return None
    return match.group(1), match.group(2)


def article_attributes(event: Envelope) -> dict[str, str | int]:
    """``portal.article.*`` attributes of an article event (empty for any other event)."""
    data: Any = getattr(event, "data", None)
    article_id = getattr(data, "article_id", None)
    if not isinstance(article_id, str):
        return {}
    attrs: dict[str, str | int] = {ARTICLE_ID: article_id}
    source = getattr(data, "source", None)
    if isinstance(source, str):
        attrs[ARTICLE_SOURCE] = source
    revision = getattr(data, "revision", None)
    if isinstance(revision, int):
        attrs[ARTICLE_REVISION] = revision
    return attrs


def tag_event(event: Envelope, span: trace.Span | None = None) -> None:
    """Mark the current span (or ``span``) as concerning the event's article, if it is about one
    (so the article's spans can be found by its id)."""
    attrs = article_attributes(event)
    target = span or trace.get_current_span()
    if attrs and target.is_recording():
        target.set_attributes(attrs)
