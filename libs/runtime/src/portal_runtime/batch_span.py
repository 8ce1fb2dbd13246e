"""The span of one consumed batch: one per batch per service, linked to each message's trace.

A child of the messages' trace when they all share one (a quiet pipeline: one article's trace
shows every stage), else a root; either way it links to each message's own trace context (up
to the SDK's limit), so one article's journey is still one trace. The links are bare (the
trace they lead to names its article); the span itself names the article when the batch is
about one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    get_current_span,
)

from portal_contracts.envelope import Envelope
from portal_runtime.batch import Entry, Message, Refused
from portal_runtime.telemetry import article_attributes

tracer = trace.get_tracer("portal_runtime.consumer")

MAX_LINKS = 128  # the SDK's default limit of links per span


@contextlib.contextmanager
def batch_span(
    group: str, entries: Sequence[Entry], messages: Sequence[Message[Any]]
) -> Iterator[Span]:
    links = []
    traces: set[int] = set()
    # The article attributes of the batch's messages (always built in the same key order), to
    # tell whether the whole batch is about one article revision: looked at only until a
    # second one shows.
    articles: set[tuple[str | int, ...]] = set()
    one_article: dict[str, str | int] = {}
    for n, m in enumerate(messages):  # one pass: links, traces, articles
        ctx = (
            get_current_span(m.context).get_span_context()
            if m.context is not None
            else INVALID_SPAN_CONTEXT
        )
        if len(articles) < 2 and isinstance(m.event, Envelope):
            one_article = article_attributes(m.event)
            articles.add(tuple(one_article.values()))
        if ctx.is_valid:
            traces.add(ctx.trace_id)
            if n < MAX_LINKS:
                # A bare link: attributes on each (the article's id) cost about 10 us a link
                # to build and export, once per message of every consumer, and the link
                # already leads to the article's own trace, which carries them.
                links.append(Link(ctx))
    # One trace (a quiet pipeline, or one article's events): the batch is a step of it.
    parent = messages[0].context if len(traces) == 1 else Context()
    topics = sorted({e.record.topic for e in entries})
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.consumer.group.name": group,
        "messaging.destination.name": topics[0] if len(topics) == 1 else ",".join(topics),
        "messaging.batch.message_count": len(entries),
    }
    if len(articles) == 1:
        attributes.update(one_article)
    with tracer.start_as_current_span(
        f"{attributes['messaging.destination.name']} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ) as span:
        yield span
        if span.is_recording() and any(isinstance(e, Refused) for e in entries):
            span.set_status(Status(StatusCode.ERROR, "dead letters in the batch"))
