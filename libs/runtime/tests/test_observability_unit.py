"""Pure parts of the telemetry: trace context parsing, article attributes, log enrichment,
OpenSearch operation names, the metrics poller's handling of failing sources."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
)
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_runtime import logs
from portal_runtime.consumer import ConsumerConfig
from portal_runtime.metrics import MetricsPoller, labels
from portal_runtime.opensearch import operation_of
from portal_runtime.settings import ServiceSettings
from portal_runtime.telemetry import (
    ARTICLE_ID,
    ARTICLE_REVISION,
    ARTICLE_SOURCE,
    article_attributes,
    parse_traceparent,
    resource_for,
    tag_event,
)


def _ingested() -> ArticleIngestedEvent:
    return ArticleIngestedEvent(
        producer="ingest",
        subject="a1",
        data=ArticleIngested(
            article_id="a1",
            source="bo-y-te",
            external_id="x1",
            revision=3,
            action=ArticleAction.UPSERT,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=ArticleContent(
                title="Tiêu đề", section="ct-xay-dung-dang", body_html="<p>x</p>"
            ),
            raw_object_key="raw/x",
        ),
    )


def test_traceparent_is_parsed_and_invalid_ones_are_refused() -> None:
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert parse_traceparent(f"00-{tid}-{sid}-01") == (tid, sid)
    assert parse_traceparent(f"00-{tid}-{sid}-01".encode()) == (tid, sid)
    assert parse_traceparent(f"00-{'0' * 32}-{sid}-01") is None  # the all-zero id is invalid
    assert parse_traceparent("garbage") is None
    assert parse_traceparent(None) is None


def test_article_events_carry_article_attributes_and_others_do_not() -> None:
    assert article_attributes(_ingested()) == {
        ARTICLE_ID: "a1",
        ARTICLE_SOURCE: "bo-y-te",
        ARTICLE_REVISION: 3,
    }
    dead = DeadLetterEvent(
        producer="normalize",
        subject="t/0/1",
        data=DeadLetter(
            original_topic="t",
            original_partition=0,
            original_offset=1,
            original_value_b64="",
            consumer_group="g",
            reason="bad",
            error_type="decode",
            failed_at=datetime.now(UTC),
        ),
    )
    assert article_attributes(dead) == {}


def test_logs_inside_an_article_span_carry_the_article_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure_logging("unit", "INFO", json=True)
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("handle") as span:
        tag_event(_ingested(), span)
        logging.getLogger("unit").info("inside")
    logging.getLogger("unit").info("outside")
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    inside = next(line for line in lines if line["event"] == "inside")
    outside = next(line for line in lines if line["event"] == "outside")
    assert inside["article_id"] == "a1"
    assert len(inside["trace_id"]) == 32 and len(inside["span_id"]) == 16
    assert inside["service"] == "unit"
    assert "article_id" not in outside and "trace_id" not in outside


def test_each_process_names_its_instance_in_logs_telemetry_and_kafka(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = ServiceSettings(service_name="normalize", service_instance_id="normalize-2")
    assert settings.instance_id == "normalize-2"
    assert ConsumerConfig.from_settings(settings).client_id == "normalize-2"
    assert resource_for("normalize", settings.instance_id).attributes["service.instance.id"] == (
        "normalize-2"
    )
    logs.configure_logging("normalize", "INFO", json=True, instance=settings.instance_id)
    logging.getLogger("unit").info("named")
    line = next(json.loads(out) for out in capsys.readouterr().out.splitlines() if '"named"' in out)
    assert (line["service"], line["instance"]) == ("normalize", "normalize-2")
    # Unset (a process started by hand): the service, the host and the pid, unique per process.
    unnamed = ServiceSettings(service_name="normalize").instance_id
    assert unnamed.startswith("normalize-") and unnamed.endswith(f"-{os.getpid()}")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/articles-v3/_search", ("search", "articles-v3")),
        ("POST", "/_bulk", ("bulk", None)),
        ("PUT", "/articles/_doc/abc", ("index", "articles")),
        ("GET", "/articles/_doc/abc", ("get", "articles")),
        ("DELETE", "/articles/_doc/abc?version=3", ("delete", "articles")),
        ("GET", "/_cluster/health", ("cluster", None)),
        ("PUT", "/articles-v4", ("indices.create", "articles-v4")),
        ("GET", "/", ("info", None)),
    ],
)
def test_opensearch_operation_names(
    method: str, path: str, expected: tuple[str, str | None]
) -> None:
    assert operation_of(method, path) == expected


async def test_a_failing_source_drops_its_series_instead_of_reporting_stale_values() -> None:
    poller = MetricsPoller(interval_s=0.1)
    answers: list[object] = [{"portal.test.gauge": {labels(x="1"): 5.0}}, RuntimeError("down")]

    async def poll() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    poller.add("test", poll)
    await poller.poll_once()
    assert poller.observed.values["portal.test.gauge"] == {(("x", "1"),): 5.0}
    await poller.poll_once()
    assert "portal.test.gauge" not in poller.observed.values
    poller.close()


async def test_a_slow_source_times_out() -> None:
    poller = MetricsPoller(interval_s=0.1, timeout_s=0.05)

    async def slow() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        await asyncio.sleep(1)
        return {}

    poller.add("slow", slow)
    await asyncio.wait_for(poller.poll_once(), timeout=0.5)
    poller.close()


# -- sampling, statement spans, the span of a consumed batch ------------------------------------


def test_the_sampler_follows_the_parent_and_keeps_a_ratio_of_new_traces() -> None:
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from portal_runtime.telemetry import sampler_for

    never = sampler_for(0.0)
    assert not never.should_sample(None, 1, "root").decision.is_sampled()
    sampled_parent = set_span_in_context(
        NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(1)))
    )
    # A partner's sampled request stays sampled through every service, whatever the ratio.
    assert never.should_sample(sampled_parent, 1, "child").decision.is_sampled()
    assert sampler_for(1.0).should_sample(None, 1, "root").decision.is_sampled()


def test_statement_spans_are_off_unless_asked_for() -> None:
    from portal_runtime.db import make_engine

    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"  # never connected to
    quiet = make_engine(url)
    traced = make_engine(url, trace_statements=True)
    assert len(quiet.sync_engine.dispatch.before_cursor_execute) == 0
    assert len(traced.sync_engine.dispatch.before_cursor_execute) >= 1


async def test_a_batch_is_one_span_linked_to_each_message_and_events_keep_their_trace() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from portal_contracts.codec import encode
    from portal_contracts.topics import ARTICLE_INGESTED
    from portal_runtime.batch import Message, Record
    from portal_runtime.consumer import Subscription
    from portal_runtime.telemetry import setup_tracing
    from portal_runtime.testing import drive
    from portal_runtime.unit_of_work import UnitOfWork

    exporter = InMemorySpanExporter()
    setup_tracing("unit", "", (SimpleSpanProcessor(exporter),))

    async def handle(batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork) -> None:
        for message in batch:
            uow.emit("out", message.event, cause=message)

    sub = Subscription(group="unit", topics=[ARTICLE_INGESTED], handler=handle, inbox=False)

    def record(offset: int, trace_hex: str, span_hex: str) -> Record:
        header = (("traceparent", f"00-{trace_hex}-{span_hex}-01".encode()),)
        return Record(ARTICLE_INGESTED.name, 0, offset, b"a1", encode(_ingested()), header)

    one, two = "1" * 32, "2" * 32
    # Two traces in one batch: the batch is a root span, linked to both messages.
    ledger = await drive(sub, [record(0, one, "a" * 16), record(1, two, "b" * 16)])
    [span] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert span.parent is None
    assert [format(link.context.trace_id, "032x") for link in span.links] == [one, two]
    assert span.attributes["messaging.batch.message_count"] == 2
    # Each caused event travels in its own message's trace, not the batch's.
    parents = [parse_traceparent(h["traceparent"]) for _, _, h in ledger.events]
    assert parents == [(one, "a" * 16), (two, "b" * 16)]

    exporter.clear()
    # One trace: the batch is a step of it (a child of the message's producer span).
    ledger = await drive(sub, [record(0, one, "c" * 16)])
    [span] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert span.parent is not None and format(span.parent.span_id, "016x") == "c" * 16
    assert format(span.context.trace_id, "032x") == one
    [(_, _, headers)] = ledger.events
    assert parse_traceparent(headers["traceparent"]) == (one, format(span.context.span_id, "016x"))


TOKEN = "Zq3kP9vX7mN2bL5cR8tY1wE4uI6oA0sD"


async def test_a_finished_request_span_holds_no_private_status_token() -> None:
    import httpx
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from portal_runtime.telemetry import scrub_span

    app = FastAPI()

    @app.get("/v1/status/{token}")
    async def status_page(token: str) -> dict[str, bool]:
        return {"found": token == TOKEN}  # the route itself still gets the token

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, server_request_hook=scrub_span
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://portal"
    ) as client:
        resp = await client.get(f"/v1/status/{TOKEN}?moi=1")
    assert resp.json() == {"found": True}
    [span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/v1/status/{token}"
    # The stable conventions name it url.path, the older ones http.target.
    path = attributes.get("url.path", attributes.get("http.target"))
    assert path == "/v1/status/[redacted]"
    assert TOKEN not in repr(attributes) and TOKEN not in span.name


def test_client_spans_and_log_lines_hold_no_private_status_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from portal_runtime.telemetry import scrub_private_paths, scrub_span

    url = f"http://engagement:8000/v1/status/{TOKEN}"
    span = TracerProvider().get_tracer("unit").start_span("GET", attributes={"url.full": url})
    scrub_span(span)
    span.end()
    assert span.attributes == {"url.full": "http://engagement:8000/v1/status/[redacted]"}
    page = f"/gui-y-kien/trang-thai/{TOKEN}?moi=1"
    assert scrub_private_paths(page) == "/gui-y-kien/trang-thai/[redacted]?moi=1"
    assert scrub_private_paths("/trang-thai/{token}") == "/trang-thai/{token}"

    logs.configure_logging("unit", "INFO", json=True)
    logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    [line] = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert "/v1/status/[redacted]" in line["event"]
    assert TOKEN not in json.dumps(line)
