"""What an SRE relies on, end to end on the real stack with the six services and Jaeger:

* one article pushed by a partner is one trace in the trace backend, found through Jaeger's own
  query API (by trace id and by the article's id), with spans of ingest, normalize, moderation,
  publishing and search in causal order, and the conventions' attributes;
* after a burst of pushes, each service's /metrics shows what it processed and its consumer lag;
* the article journey (ingest's admin API) lists the stages with times and links to the trace.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from tests.observability.conftest import ObservedPortal, unique

pytestmark = pytest.mark.stack

TRUSTED = "bao-nhan-dan"  # published at once (deploy/seed/sources.yaml)
PRE_REVIEW = "tp-ha-noi"
CHAIN = ["ingest", "normalize", "moderation", "publishing", "search"]
PRODUCER, CONSUMER, SERVER, CLIENT = 4, 5, 2, 3  # OTLP span kinds


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    span_id: str
    parent_id: str
    start_ns: int
    attributes: dict[str, Any]
    links: tuple[str, ...] = ()  # span ids this span links to (a batch: each message's sender)


def _value(v: dict[str, Any]) -> Any:
    (kind, value), *_ = v.items()
    return int(value) if kind == "intValue" else value


def _jaeger_trace(portal: ObservedPortal, trace_id: str) -> list[Span]:
    """One trace through Jaeger's API v3 (OTLP JSON); [] while it is not there yet."""
    resp = portal.http.get(f"{portal.jaeger}/api/v3/traces/{trace_id}")
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    spans = []
    for rs in resp.json()["result"]["resourceSpans"]:
        resource = {a["key"]: _value(a["value"]) for a in rs["resource"]["attributes"]}
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                spans.append(
                    Span(
                        service=resource["service.name"],
                        name=s["name"],
                        kind=s["kind"],
                        span_id=s["spanId"],
                        parent_id=s.get("parentSpanId", ""),
                        start_ns=int(s["startTimeUnixNano"]),
                        attributes={a["key"]: _value(a["value"]) for a in s.get("attributes", [])},
                        links=tuple(link["spanId"] for link in s.get("links", [])),
                    )
                )
    return spans


def _push(portal: ObservedPortal, key: str, source: str, ext: str, **headers: str) -> Any:
    section = "tin-hoat-dong" if source == TRUSTED else "ct-tin-tuc-hoat-dong"
    resp = portal.http.put(
        portal.url("ingest", f"/v1/articles/{ext}"),
        json={
            "content": {
                "title": f"Theo dấu bài viết {ext}",
                "section": section,
                "body_html": f"<p>Đảng Cộng sản Việt Nam {ext}</p>",
            }
        },
        headers={"Authorization": f"Bearer {key}", **headers},
    )
    assert resp.status_code in (200, 202), resp.text
    return resp.json()


def _indexed(portal: ObservedPortal, ext: str, article_id: str) -> bool:
    hits = portal.http.get(portal.url("search", "/v1/search"), params={"q": ext}).json()["hits"]
    return any(h["article_id"] == article_id for h in hits)


def test_one_article_is_one_trace_in_jaeger_in_causal_order(observed: ObservedPortal) -> None:
    key = observed.api_key(TRUSTED)
    ext = unique("nd-jaeger")
    trace_id = uuid.uuid4().hex
    partner_span = uuid.uuid4().hex[:16]
    article_id = _push(observed, key, TRUSTED, ext, traceparent=f"00-{trace_id}-{partner_span}-01")[
        "article_id"
    ]
    observed.wait_for(lambda: _indexed(observed, ext, article_id), what="indexed by search")

    def orphans(spans: list[Span]) -> list[Span]:
        ids = {s.span_id for s in spans} | {partner_span}
        return [s for s in spans if s.parent_id not in ids]

    # Each service exports its spans on its own schedule, and a parent ends (and is exported)
    # after its children: the trace is complete once every stage is there and no span waits
    # for its parent. A parent that never arrives still fails the test, at the timeout.
    def complete() -> list[Span] | None:
        spans = _jaeger_trace(observed, trace_id)
        searched = [s for s in spans if s.service == "search" and s.kind == CLIENT]
        settled = {s.service for s in spans} >= set(CHAIN) and searched and not orphans(spans)
        return spans if settled else None

    try:
        spans = observed.wait_for(complete, timeout_s=60, what="the trace in Jaeger")
    except AssertionError:
        spans = _jaeger_trace(observed, trace_id)  # the assertions below say what is missing
    by_id = {s.span_id: s for s in spans}

    # The partner's request is the root: ingest's server span is the child of the partner's span.
    request = next(s for s in spans if s.service == "ingest" and s.kind == SERVER)
    assert request.parent_id == partner_span
    assert request.attributes["http.request.method"] == "PUT"
    assert request.attributes["http.route"].startswith("/v1/articles/")
    assert request.attributes["portal.article.id"] == article_id
    assert request.attributes["portal.article.source"] == TRUSTED
    # Every other span hangs off a span of this trace.
    assert not orphans(spans), [(s.service, s.name) for s in orphans(spans)]

    # Causal order: each stage's consumer span is the child of the previous stage's publish span,
    # or links to it (a batch span has one parent: when one batch holds two of the article's
    # messages, e.g. moderation's article.ingested and article.normalized, the first message's
    # sender is the parent and the other sender is a link), and the hops follow in time.
    def sent_by(span: Span, service: str) -> Span | None:
        senders = [by_id.get(i) for i in (span.parent_id, *span.links)]
        return next(
            (p for p in senders if p is not None and p.service == service and p.kind == PRODUCER),
            None,
        )

    hop_starts = [request.start_ns]
    for before, after in itertools.pairwise(CHAIN):
        hops = [
            (s, sender)
            for s in spans
            if s.service == after and s.kind == CONSUMER
            for sender in [sent_by(s, before)]
            if sender is not None
        ]
        assert hops, f"no span of {after} consumes a message published by {before}"
        hop, sender = min(hops, key=lambda h: h[0].start_ns)
        assert hop.start_ns >= sender.start_ns
        assert hop.attributes["messaging.system"] == "kafka"
        assert hop.attributes["messaging.consumer.group.name"]
        assert hop.attributes["portal.article.id"] == article_id
        assert hop.attributes["portal.article.revision"] == 1
        hop_starts.append(hop.start_ns)
    assert hop_starts == sorted(hop_starts)

    # Database, object storage and OpenSearch calls are client spans with the conventions' names.
    assert any(s.attributes.get("db.system.name") == "postgresql" for s in spans)
    archive = [s for s in spans if s.attributes.get("rpc.method") == "PutObject"]
    assert archive and archive[0].service == "ingest"
    assert archive[0].attributes["rpc.service"] == "S3"
    indexing = [s for s in spans if s.attributes.get("db.system.name") == "opensearch"]
    assert indexing and {s.service for s in indexing} == {"search"}
    assert all(s.kind == CLIENT for s in [*archive, *indexing])

    # A person finds the article's trace in Jaeger by the article id alone.
    found = observed.http.get(
        f"{observed.jaeger}/api/traces",
        params={
            "service": "search",
            "tags": json.dumps({"portal.article.id": article_id}),
            "lookback": "1h",
            "limit": 20,
        },
    ).json()["data"]
    assert trace_id in {t["traceID"] for t in found}


def _series(text: str, name: str, **match: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items()):
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _sum(text: str, name: str, **match: str) -> float:
    return sum(_series(text, name, **match).values())


def test_a_burst_shows_in_processed_counts_and_consumer_lag(observed: ObservedPortal) -> None:
    burst = 25
    key = observed.api_key(PRE_REVIEW)
    ingested = {"topic": ARTICLE_INGESTED.name, "consumer_group": "normalize"}
    before_normalize = observed.metrics("normalize")
    before_ingest = observed.metrics("ingest")
    processed_before = _sum(
        before_normalize, "portal_messages_processed_total", outcome="ok", **ingested
    )
    route = {"http_route": "/v1/articles/{external_id:path}", "http_request_method": "PUT"}
    requests_before = _sum(before_ingest, "http_server_request_duration_seconds_count", **route)

    for _ in range(burst):
        _push(observed, key, PRE_REVIEW, unique("hn-burst"))

    def caught_up() -> str | None:
        text = observed.metrics("normalize")
        done = _sum(text, "portal_messages_processed_total", outcome="ok", **ingested)
        lag = _series(text, "portal_kafka_consumer_lag", **ingested)
        return text if done - processed_before >= burst and lag and sum(lag.values()) == 0 else None

    text = observed.wait_for(caught_up, timeout_s=120, what="normalize to process the burst")
    # Lag is reported per partition of the topic the group consumes.
    partitions = {
        dict(k)["partition"] for k in _series(text, "portal_kafka_consumer_lag", **ingested)
    }
    assert partitions == {str(p) for p in range(ARTICLE_INGESTED.partitions)}
    # The burst's batches were timed (once per batch: the counter counts the messages).
    timed = _sum(text, "portal_message_processing_duration_seconds_count", **ingested)
    assert timed >= 1
    # Normalize's own outbox was drained to Kafka.
    assert _sum(text, "portal_outbox_backlog") == 0
    assert _sum(text, "portal_outbox_relayed_total", topic=ARTICLE_NORMALIZED.name) >= burst

    after_ingest = observed.metrics("ingest")
    requests = _sum(after_ingest, "http_server_request_duration_seconds_count", **route) - (
        requests_before
    )
    assert requests >= burst
    # Ingest follows the pre-review articles into the review backlog of their source.
    observed.wait_for(
        lambda: (
            _sum(observed.metrics("ingest"), "portal_review_backlog", source=PRE_REVIEW) >= burst
        ),
        what="the review backlog gauge",
    )


def test_the_journey_lists_stages_with_times_and_trace_links(observed: ObservedPortal) -> None:
    key = observed.api_key(TRUSTED)
    ext = unique("nd-journey")
    trace_id = uuid.uuid4().hex
    article_id = _push(
        observed, key, TRUSTED, ext, traceparent=f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    )["article_id"]
    observed.wait_for(lambda: _indexed(observed, ext, article_id), what="indexed")

    def journey() -> dict[str, Any] | None:
        body: dict[str, Any] = observed.admin(
            "GET", "ingest", f"/admin/v1/articles/{article_id}/journey"
        )
        # Ingest records the stages from each topic's events as they reach its journey group,
        # not necessarily in order ("received" can come last): wait for all of them.
        stages = [s["stage"] for s in body["stages"]]
        # The status is another consumer group's (it follows the same events): wait for it too.
        done = stages == ["received", "normalized", "auto_published", "published"]
        return body if done and body["status"] == "published" else None

    body = observed.wait_for(journey, what="every stage of the journey up to published")
    assert body["source"] == TRUSTED and body["status"] == "published"
    stages = body["stages"]
    assert [s["stage"] for s in stages] == ["received", "normalized", "auto_published", "published"]
    assert [s["service"] for s in stages] == ["ingest", "normalize", "moderation", "publishing"]
    times = [s["at"] for s in stages]
    assert times == sorted(times)
    assert all(s["since_previous_s"] >= 0 for s in stages[1:])
    # Every stage belongs to the partner's request trace, and links to it in the desk's journey
    # page, which draws the trace (tests/observability/test_desk_journey.py).
    assert {s["trace_id"] for s in stages} == {trace_id}
    desk = observed.url("moderation", f"/desk/journey/{article_id}#trace-{trace_id}")
    assert body["traces"][0]["url"] == desk
    assert body["total_s"] is not None and body["total_s"] >= 0

    # Operators only: the journey needs the admin token; an unknown id is a 404 naming it.
    assert (
        observed.http.get(observed.url("ingest", f"/admin/v1/articles/{article_id}/journey"))
    ).status_code == 401
    missing = observed.http.get(
        observed.url("ingest", f"/admin/v1/articles/{uuid.uuid4()}/journey"),
        headers={"Authorization": f"Bearer {observed.admin_token('ingest')}"},
    )
    assert missing.status_code == 404 and "article_id" in missing.text


def test_service_logs_are_json_with_trace_and_article_ids(observed: ObservedPortal) -> None:
    key = observed.api_key(TRUSTED)
    ext = unique("nd-logs")
    trace_id = uuid.uuid4().hex
    article_id = _push(
        observed, key, TRUSTED, ext, traceparent=f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    )["article_id"]
    log = observed.settings.component_dir("service-ingest") / "service-ingest.log"

    def logged() -> dict[str, Any] | None:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and trace_id in line:
                record: dict[str, Any] = json.loads(line)
                if record.get("event") == "article_ingested":
                    return record
        return None

    record = observed.wait_for(logged, timeout_s=60, what="ingest's log line for the article")
    assert record["trace_id"] == trace_id
    assert len(record["span_id"]) == 16
    assert record["service"] == "ingest"
    assert record["article_id"] == article_id
    assert record["level"] == "info" and "timestamp" in record
