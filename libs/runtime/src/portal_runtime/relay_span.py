"""The relay's telemetry: one producer span per round, and the headers each message carries.

Rows all written in one trace (a quiet pipeline: one article's events): the span is a step of
that trace, a child of the first row's writer, and the messages carry the span's context, so
the consumer's batch span is its child. Rows of many traces: the span is a root linked to each
row's writer, and each message carries its own writer's trace context, so every article's
journey stays one trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind

tracer = trace.get_tracer("portal_runtime.relay")

MAX_LINKS = 128  # the SDK's default limit of links per span


@contextlib.contextmanager
def round_span(rows: Sequence[Any]) -> Iterator[list[tuple[str, bytes]] | None]:
    """One producer span for a relay round (see the module's docstring); yields the headers
    every row of the round carries, or None when each row carries its own."""
    contexts = [propagate.extract(row.headers or {}) for row in rows]
    valid = [
        c
        for c in (trace.get_current_span(ctx).get_span_context() for ctx in contexts)
        if c.is_valid
    ]
    single = len(valid) == len(rows) and len({c.trace_id for c in valid}) == 1
    topics = sorted({row.topic for row in rows})
    destination = topics[0] if len(topics) == 1 else ",".join(topics)
    with tracer.start_as_current_span(
        f"{destination} publish",
        context=contexts[0] if single else Context(),
        kind=SpanKind.PRODUCER,
        links=None if single else links_to(valid),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": destination,
            "messaging.batch.message_count": len(rows),
        },
    ):
        if not single:
            yield None
            return
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield [("content-type", b"application/json")] + [
            (name, value.encode()) for name, value in carrier.items()
        ]


def links_to(contexts: list[SpanContext]) -> list[Link]:
    """One link per distinct writer (a transaction writes many rows), at most ``MAX_LINKS``."""
    seen: set[tuple[int, int]] = set()
    links: list[Link] = []
    for ctx in contexts:
        if (ctx.trace_id, ctx.span_id) not in seen and len(links) < MAX_LINKS:
            seen.add((ctx.trace_id, ctx.span_id))
            links.append(Link(ctx))
    return links


def headers_of(row: Any) -> list[tuple[str, bytes]]:
    """The Kafka headers of a row: its content type and the trace context stored with it."""
    headers = [("content-type", b"application/json")]
    for name, value in (row.headers or {}).items():
        if name != "content-type" and isinstance(value, str):
            headers.append((name, value.encode()))
    return headers
