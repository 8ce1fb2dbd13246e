"""Pure parts of the telemetry: trace context parsing, article attributes, log enrichment,
OpenSearch operation names, the metrics poller's handling of failing sources."""

from __future__ import annotations

import asyncio
import json
import logging
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
from portal_runtime.metrics import MetricsPoller, labels
from portal_runtime.opensearch import operation_of
from portal_runtime.telemetry import (
    ARTICLE_ID,
    ARTICLE_REVISION,
    ARTICLE_SOURCE,
    article_attributes,
    parse_traceparent,
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
