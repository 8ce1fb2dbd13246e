"""Faults while articles flow: after recovery nothing acknowledged is lost or doubled.

In each test a trusted partner (published without review) pushes a stream of new articles and
new revisions through ingest's REST API; a third of the way in, one part of the platform is
broken: a service is SIGKILLed and started again, or Kafka, PostgreSQL, OpenSearch or the object
store is stopped for a while and started again. Two more cases exercise the batch consumers: a
poison message inside a busy batch (among redelivered events, then a crash), which must be
dead-lettered exactly once; and a rebalance, a second instance of a service joining mid-stream
and leaving again. Then, once the pipeline has drained, every
article the partner got a 2xx for must be public exactly once at its newest acknowledged
revision, searchable exactly once with that revision's title, and article.published must carry
no second publication of any revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from portal_contracts.articles import ArticleReviewed, ArticleReviewedEvent, ReviewDecision
from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_PUBLISHED, ARTICLE_REVIEWED
from portal_launcher import stack as launcher
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.services import BACKENDS, SERVICES, process
from tests.chaos.partner import PartnerStream
from tests.chaos.report import RESULTS, Counts
from tests.e2e.conftest import Portal

pytestmark = pytest.mark.stack

SOURCE = "bao-nhan-dan"  # trusted in deploy/seed/sources.yaml: published without review
SECTION = "van-de-quan-tam"
ARTICLES = 18  # per fault, plus a new revision of every third one
DRAIN_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Fault:
    target: str  # a service or a stack component
    kill: bool  # SIGKILL (a crash) rather than a clean stop
    down_s: float  # how long it stays down


FAULTS = {
    # The website holds no data: killing it cannot lose or double an article.
    **{f"kill-{name}": Fault(name, kill=True, down_s=1.0) for name in BACKENDS},
    "kafka": Fault("kafka", kill=False, down_s=5.0),
    "postgres": Fault("postgres", kill=False, down_s=5.0),
    "opensearch": Fault("opensearch", kill=False, down_s=5.0),
    "s3": Fault("s3", kill=False, down_s=8.0),
}


def _break_and_restore(portal: Portal, fault: Fault) -> None:
    comp = launcher.component(portal.settings, fault.target)
    stopped = comp.kill() if fault.kill else comp.stop()
    assert stopped, f"{fault.target} was not running"
    time.sleep(fault.down_s)  # the stream goes on meanwhile
    launcher.start_one(portal.settings, fault.target, say=lambda _: None)


def _unready_services(portal: Portal) -> dict[str, str]:
    out = {}
    for name in SERVICES:
        state = launcher.component(portal.settings, name).readiness()  # type: ignore[attr-defined]
        if state != "ready":
            out[name] = state
    return out


# -- what the public sees --------------------------------------------------------------------


def _listing(portal: Portal) -> list[dict[str, Any]]:
    """Every article of the stream's sub-site section, page by page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"section": SECTION, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        resp = portal.http.get(
            portal.url("publishing", f"/v1/subsites/{SOURCE}/articles"), params=params
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def _search_hits(portal: Portal, marker: str) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = portal.http.get(
            portal.url("search", "/v1/search"),
            params={"q": marker, "source": SOURCE, "sort": "date", "size": 50, "page": page},
        )
        assert resp.status_code == 200, resp.text
        batch = resp.json()["hits"]
        hits.extend(batch)
        if len(batch) < 50:
            return hits
        page += 1


@dataclass
class Seen:
    published: dict[str, list[dict[str, Any]]]  # article id -> its entries in the listing
    searched: dict[str, list[dict[str, Any]]]  # article id -> its search hits

    def missing(self, stream: PartnerStream) -> list[str]:
        """Acknowledged articles not yet public and searchable at their newest revision."""
        out = []
        for ext, want in stream.acked.items():
            pub = self.published.get(want.article_id, [])
            hits = self.searched.get(want.article_id, [])
            if not any(p["revision"] == want.revision and p["title"] == want.title for p in pub):
                out.append(f"{ext} r{want.revision} not public (listing: {_brief(pub)})")
            elif not any(h["title"] == want.title for h in hits):
                out.append(f"{ext} r{want.revision} not searchable (hits: {_brief(hits)})")
        return out


def _brief(entries: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(e.get("revision"), e.get("title")) for e in entries]


def _observe(portal: Portal, stream: PartnerStream) -> Seen:
    ids = {a.article_id for a in stream.acked.values()}
    published: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in _listing(portal):
        if item["article_id"] in ids:
            published[item["article_id"]].append(item)
    searched: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in _search_hits(portal, stream.marker):
        searched[hit["article_id"]].append(hit)
    return Seen(published, searched)


def _wait_drained(portal: Portal, stream: PartnerStream) -> Seen:
    """Bounded wait until every acknowledged article is public and searchable; the last view."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        seen = _observe(portal, stream)
        if not seen.missing(stream) or time.monotonic() > deadline:
            return seen
        time.sleep(1.0)


def _publications(portal: Portal, kafka_events: Any, ids: set[str]) -> tuple[int, int]:
    """(second publications of a revision under another event id, redelivered events)."""
    events = asyncio.run(kafka_events.read(ARTICLE_PUBLISHED.name, None))
    by_revision: dict[tuple[str, int, str], set[str]] = defaultdict(set)
    per_event: Counter[str] = Counter()
    for event in events:
        data = event.get("data")
        if not isinstance(data, dict) or data.get("article_id") not in ids:
            continue  # other tests' events, including deliberately malformed ones
        by_revision[(data["article_id"], data["revision"], data["state"])].add(event["event_id"])
        per_event[event["event_id"]] += 1
    doubled = sum(len(ids_) - 1 for ids_ in by_revision.values())
    redelivered = sum(n - 1 for n in per_event.values())
    return doubled, redelivered


def _stream(portal: Portal, articles: int = ARTICLES, pace_s: float = 0.15) -> PartnerStream:
    return PartnerStream(
        base_url=portal.url("ingest"),
        api_key=portal.api_key(SOURCE),
        marker=f"cx{uuid.uuid4().hex[:8]}",
        section=SECTION,
        articles=articles,
        pace_s=pace_s,
    ).start()


def _settle(
    portal: Portal, kafka_events: Any, stream: PartnerStream, name: str, started: float
) -> Counts:
    """Once the stream is over and the platform recovered: count, report, assert none lost or
    doubled."""
    stream.join()
    assert not stream.failures, stream.failures

    # Every service is back (a consumer or relay that died would show here or in the drain).
    portal.wait_for(lambda: not _unready_services(portal), timeout_s=120, what="all services ready")
    seen = _wait_drained(portal, stream)
    missing = seen.missing(stream)
    ids = {a.article_id for a in stream.acked.values()}
    doubled, redelivered = _publications(portal, kafka_events, ids)
    listed_twice = {i: len(v) for i, v in seen.published.items() if len(v) > 1}
    found_twice = {i: len(v) for i, v in seen.searched.items() if len(v) > 1}
    published = sum(
        1
        for a in stream.acked.values()
        if any(p["revision"] == a.revision for p in seen.published.get(a.article_id, []))
    )
    searchable = sum(
        1
        for a in stream.acked.values()
        if any(h["title"] == a.title for h in seen.searched.get(a.article_id, []))
    )
    counts = Counts(
        fault=name,
        pushed=len(stream.acked),
        requests=stream.requests_acked,
        retries=stream.retries,
        published=published,
        searchable=searchable,
        duplicates=doubled
        + sum(n - 1 for n in listed_twice.values())
        + sum(n - 1 for n in found_twice.values()),
        lost=len(missing),
        redelivered=redelivered,
        seconds=time.monotonic() - started,
    )
    RESULTS.append(counts)
    print(counts.line())

    assert len(stream.acked) == stream.articles, "every article of the stream was acknowledged"
    assert not missing, f"lost after {name}: {missing}"
    assert not listed_twice, f"listed more than once: {listed_twice}"
    assert not found_twice, f"found more than once by search: {found_twice}"
    assert doubled == 0, f"{doubled} revisions published twice on {ARTICLE_PUBLISHED.name}"
    return counts


@pytest.mark.parametrize("name", list(FAULTS))
def test_nothing_acknowledged_is_lost_or_doubled(
    portal: Portal, kafka_events: Any, name: str
) -> None:
    fault = FAULTS[name]
    started = time.monotonic()
    stream = _stream(portal)
    stream.wait_progress(1 / 3)
    _break_and_restore(portal, fault)
    _settle(portal, kafka_events, stream, name, started)


# -- a poison message inside a busy batch -------------------------------------------------------


def _beside(article_id: str, partitions: int) -> str:
    """Another article id whose events share ``article_id``'s partition (Kafka's partitioner)."""

    def partition(key: str) -> int:
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions

    while True:
        candidate = str(uuid.uuid4())
        if partition(candidate) == partition(article_id):
            return candidate


def _poison(article_id: str) -> ArticleReviewedEvent:
    """An approval that carries no article: publishing can never apply it. (About an article
    nobody has, on a stream article's partition: nothing else of the pipeline is misled.)"""
    return ArticleReviewedEvent(
        producer="chaos",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=SOURCE,
            external_id="chaos-poison",
            revision=99,
            decision=ReviewDecision.APPROVED,
            reviewer="chaos",
            reviewed_at=datetime.now(UTC),
            article=None,
        ),
    )


async def _inject_into_a_busy_batch(
    kafka: dict[str, Any], ids: set[str], poison: ArticleReviewedEvent
) -> tuple[int, int]:
    """Send publishing, in one burst: every article.reviewed event of the stream so far again
    (redeliveries its inbox must absorb), with the poison in their middle, on the partition of
    the stream's articles. Returns the poison's (partition, offset)."""
    consumer = AIOKafkaConsumer(
        ARTICLE_REVIEWED.name,
        **kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    again: list[Any] = []
    try:
        for _ in range(300):  # partitions are assigned once metadata arrives
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        end = await consumer.end_offsets(list(consumer.assignment()))
        while any([await consumer.position(tp) < o for tp, o in end.items()]):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for r in records:
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        if json.loads(r.value)["data"]["article_id"] in ids:
                            again.append(r)
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=50)
    await producer.start()
    try:
        middle = len(again) // 2
        for r in again[:middle]:
            await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
        sent = await producer.send(
            ARTICLE_REVIEWED.name, encode(poison), key=poison.subject.encode()
        )
        for r in again[middle:]:
            await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
        meta = await sent
    finally:
        await producer.stop()
    return meta.partition, meta.offset


@pytest.mark.timeout(600)
def test_a_poison_message_in_a_busy_batch_is_dead_lettered_once(
    portal: Portal, kafka_events: Any
) -> None:
    started = time.monotonic()
    stream = _stream(portal)
    stream.wait_progress(1 / 2)
    ids = {a.article_id for a in stream.acked.values()}
    poison = _poison(_beside(next(iter(ids)), ARTICLE_REVIEWED.partitions))
    partition, offset = asyncio.run(
        _inject_into_a_busy_batch(admin_client_options(portal.settings), ids, poison)
    )
    # A crash right after: the batch (and its dead letter) may be redone, never doubled.
    time.sleep(0.5)
    _break_and_restore(portal, Fault("publishing", kill=True, down_s=1.0))
    _settle(portal, kafka_events, stream, "poison-in-busy-batch", started)

    def letters() -> list[dict[str, Any]]:
        key = f"{ARTICLE_REVIEWED.name}/{partition}/{offset}"  # a dead letter's subject
        found = asyncio.run(kafka_events.read(ARTICLE_REVIEWED.dead_letter_topic, key))
        return [
            e
            for e in found
            if e["data"]["consumer_group"] == "publishing"
            and (e["data"]["original_partition"], e["data"]["original_offset"])
            == (partition, offset)
        ]

    portal.wait_for(letters, timeout_s=120, what="the poison's dead letter")
    time.sleep(3)  # a second one would come from the same relay round or the next
    found = letters()
    # Written once: one dead letter (its id is its record's and group's). The relay may deliver
    # it twice across the crash (at least once, like every event); a copy has the same id.
    assert len({e["event_id"] for e in found}) == 1, found
    assert "carries no article" in found[0]["data"]["reason"]


# -- a rebalance: a second instance joins mid-stream, then leaves --------------------------------


@pytest.mark.timeout(600)  # a second process starts: minutes on a busy machine
@pytest.mark.parametrize("service", ["normalize", "publishing"])
def test_a_second_instance_joining_and_leaving_mid_stream(
    portal: Portal, kafka_events: Any, service: str
) -> None:
    started = time.monotonic()
    stream = _stream(portal, articles=ARTICLES * 3)
    second = process(portal.settings, service, 2)  # same settings, its own port
    try:
        stream.wait_progress(1 / 10)
        # A trickle while the second process starts (slowly, on a busy machine), so that it
        # joins a stream still flowing.
        stream.pace_s = 3.0
        second.start()  # its consumers join the groups: partitions move while batches run
        second.wait_ready(timeout_s=180)
        joined_at = stream.progress()
        assert joined_at <= 0.8, "the stream was nearly over before the second instance joined"
        stream.pace_s = 0.15
        stream.wait_progress(joined_at + 0.15, timeout_s=120)  # both share the work a while
        assert second.stop(), "the second instance was not running"  # and leave again
    finally:
        if second.is_running():
            second.stop()
    _settle(portal, kafka_events, stream, f"rebalance-{service}", started)
