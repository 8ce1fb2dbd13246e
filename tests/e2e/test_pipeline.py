"""The article pipeline end to end, on the real stack with all six services running.

A partner pushes over REST or over its own Kafka topic; the article is normalised, reviewed by
an editor (or published at once for a trusted source), published, and searchable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context
from lxml import etree
from PIL import Image

from portal_contracts.articles import ArticleIngested, ArticleIngestedEvent, article_id_for
from portal_contracts.codec import decode
from portal_contracts.topics import (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    ARTICLE_REVIEWED,
    MAX_MESSAGE_BYTES,
    PARTNER_DEAD_LETTERS,
    partner_topic,
)
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.credentials import service_secrets
from portal_runtime.db import make_engine, make_sessionmaker, new_metadata
from portal_runtime.outbox import Outbox, outbox_table
from tests.e2e.conftest import PartnerImages, Portal

pytestmark = pytest.mark.stack

PRE_REVIEW = "tp-ha-noi"  # pre-review policy in deploy/seed/sources.yaml
OTHER_AGENCY = "bo-y-te"
TRUSTED = "bao-nhan-dan"


def _content(title: str, section: str = "ct-tin-tuc-hoat-dong", **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "section": section,
        "summary": extra.pop("summary", f"Tóm tắt: {title}"),
        "body_html": extra.pop(
            "body_html",
            f"<p>{title}. Đảng Cộng sản Việt Nam lãnh đạo toàn diện.</p>"
            "<script>alert('x')</script>",
        ),
        **extra,
    }


def _push(portal: Portal, key: str, external_id: str, content: dict[str, Any], **body: Any) -> Any:
    return portal.http.put(
        portal.url("ingest", f"/v1/articles/{external_id}"),
        json={"content": content, **body},
        headers={"Authorization": f"Bearer {key}"},
    )


def _status(portal: Portal, key: str, external_id: str) -> dict[str, Any]:
    resp = portal.http.get(
        portal.url("ingest", f"/v1/articles/{external_id}"),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _search(portal: Portal, q: str, **params: Any) -> dict[str, Any]:
    resp = portal.http.get(portal.url("search", "/v1/search"), params={"q": q, **params})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _search_ids(portal: Portal, q: str, **params: Any) -> list[str]:
    return [h["article_id"] for h in _search(portal, q, **params)["hits"]]


def _subsite_ids(portal: Portal, source: str) -> list[str]:
    resp = portal.http.get(portal.url("publishing", f"/v1/subsites/{source}/articles"))
    assert resp.status_code == 200, resp.text
    return [a["article_id"] for a in resp.json()["items"]]


def _queue_item(portal: Portal, token: str, article_id: str) -> dict[str, Any] | None:
    resp = portal.http.get(
        portal.url("moderation", f"/v1/items/{article_id}"),
        headers={"Authorization": f"Bearer {token}"},
    )
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _approve(portal: Portal, token: str, article_id: str, revision: int) -> Any:
    return portal.http.post(
        portal.url("moderation", f"/v1/items/{article_id}/approve"),
        json={"revision": revision},
        headers={"Authorization": f"Bearer {token}"},
    )


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _published_article(portal: Portal, article_id: str) -> dict[str, Any] | None:
    """The public article (found in its sub-site's listing), or None while not published."""
    for source in (PRE_REVIEW, OTHER_AGENCY, TRUSTED):
        resp = portal.http.get(portal.url("publishing", f"/v1/subsites/{source}/articles"))
        for a in resp.json().get("items", []):
            if a["article_id"] == article_id:
                full = portal.http.get(portal.url("publishing", f"/v1/articles/{a['slug']}"))
                if full.status_code == 200:
                    data: dict[str, Any] = full.json()
                    return data
    return None


def test_pre_review_article_is_public_only_after_approval(portal: Portal) -> None:
    key = portal.api_key(PRE_REVIEW)
    editor = portal.editor_token("editor")
    ext = _unique("hn")
    title = f"Hội nghị Ban Chấp hành Đảng bộ thành phố {ext}"
    resp = _push(portal, key, ext, _content(title))
    assert resp.status_code in (200, 202), resp.text
    article_id = resp.json()["article_id"]
    assert article_id == article_id_for(PRE_REVIEW, ext)

    item = portal.wait_for(lambda: _queue_item(portal, editor, article_id), what="queue item")
    assert item["state"] == "pending"
    # Sanitised on the way: no script reaches the editors or the public.
    assert "<script" not in json.dumps(item)
    assert article_id not in _subsite_ids(portal, PRE_REVIEW)
    # The partner status follows the pipeline's events (ingest's status consumer, in batches):
    # it reaches in_review, and stays there while the editor has not decided.
    portal.wait_for(
        lambda: _status(portal, key, ext)["status"] == "in_review", what="partner status"
    )

    assert _approve(portal, editor, article_id, item["revision"]).status_code == 200
    article = portal.wait_for(lambda: _published_article(portal, article_id), what="published")
    assert article["title"] == title
    assert "<script" not in json.dumps(article)

    # Searchable with and without diacritics.
    portal.wait_for(lambda: article_id in _search_ids(portal, ext), what="indexed")
    assert article_id in _search_ids(portal, f"hoi nghi ban chap hanh dang bo {ext}")
    assert article_id in _search_ids(portal, f"Hội nghị Ban Chấp hành Đảng bộ {ext}")
    portal.wait_for(
        lambda: _status(portal, key, ext)["status"] == "published", what="partner status"
    )


def test_trusted_source_is_published_at_once(portal: Portal) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("nd")
    resp = _push(portal, key, ext, _content(f"Tin hoạt động {ext}", section="tin-hoat-dong"))
    assert resp.status_code in (200, 202), resp.text
    article_id = resp.json()["article_id"]
    portal.wait_for(lambda: _published_article(portal, article_id), what="auto-published")
    portal.wait_for(lambda: article_id in _search_ids(portal, ext), what="indexed")


def test_update_revises_everywhere_and_retract_removes_everywhere(portal: Portal) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("nd")
    first = _push(portal, key, ext, _content(f"Bản đầu {ext}", section="xay-dung-dang"))
    article_id = first.json()["article_id"]
    portal.wait_for(lambda: _published_article(portal, article_id), what="published")

    again = _push(portal, key, ext, _content(f"Bản đầu {ext}", section="xay-dung-dang"))
    assert again.json()["revision"] == 1, "the same content twice must not make a new revision"

    updated = _push(portal, key, ext, _content(f"Bản sửa đổi {ext}", section="xay-dung-dang"))
    assert updated.json()["revision"] == 2
    portal.wait_for(
        lambda: (_published_article(portal, article_id) or {}).get("title") == f"Bản sửa đổi {ext}",
        what="revision 2 public",
    )
    portal.wait_for(
        lambda: [h["title"] for h in _search(portal, ext)["hits"]] == [f"Bản sửa đổi {ext}"],
        what="revision 2 indexed",
    )
    article = _published_article(portal, article_id)
    assert article is not None
    slug = article["slug"]

    portal.wait_for(
        lambda: all(slug in listing for listing in _feeds(portal)),
        what="listed in the section's RSS and the news sitemap",
    )

    gone = portal.http.delete(
        portal.url("ingest", f"/v1/articles/{ext}"), headers={"Authorization": f"Bearer {key}"}
    )
    assert gone.status_code in (200, 202), gone.text
    portal.wait_for(
        lambda: (
            portal.http.get(portal.url("publishing", f"/v1/articles/{slug}")).status_code == 410
        ),
        what="retracted page",
    )
    portal.wait_for(lambda: article_id not in _search_ids(portal, ext), what="removed from search")
    portal.wait_for(
        lambda: not any(slug in listing for listing in _feeds(portal)),
        what="gone from the RSS and the news sitemap",
    )


def _feeds(portal: Portal) -> tuple[str, str]:
    """The section's RSS and the news sitemap, as a reader gets them (both must answer)."""
    rss = portal.http.get(portal.url("publishing", "/rss/sections/xay-dung-dang.xml"))
    sitemap = portal.http.get(portal.url("publishing", "/sitemaps/news.xml"))
    assert rss.status_code == 200, rss.text
    assert sitemap.status_code == 200, sitemap.text
    return rss.text, sitemap.text


def test_older_revision_never_overwrites_a_newer_one(portal: Portal) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("nd")
    r3 = _push(portal, key, ext, _content(f"Bản số ba {ext}", section="tin-hoat-dong"), revision=3)
    assert r3.status_code in (200, 202), r3.text
    r2 = _push(portal, key, ext, _content(f"Bản số hai {ext}", section="tin-hoat-dong"), revision=2)
    assert r2.status_code == 409, r2.text
    article_id = r3.json()["article_id"]
    portal.wait_for(lambda: _published_article(portal, article_id), what="published")
    assert _published_article(portal, article_id)["title"] == f"Bản số ba {ext}"  # type: ignore[index]


# Each stage's input and what it emits: a late, older revision on any input emits nothing.
STAGES = (
    (ARTICLE_INGESTED.name, ARTICLE_NORMALIZED.name),  # normalize
    (ARTICLE_NORMALIZED.name, ARTICLE_REVIEWED.name),  # moderation
    (ARTICLE_REVIEWED.name, ARTICLE_PUBLISHED.name),  # publishing
    (ARTICLE_PUBLISHED.name, None),  # search
)


def _revisions(kafka_events: Any, topic: str, article_id: str, skip: set[str]) -> list[int]:
    """The revisions of the article's events on ``topic``, in log order (``skip``: event ids)."""
    found = asyncio.run(kafka_events.read(topic, article_id))
    return [e["data"]["revision"] for e in found if e["event_id"] not in skip]


def test_a_late_older_revision_changes_nothing_at_any_stage(
    portal: Portal, kafka_events: Any
) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("nd-late")
    titles = {n: f"Bản số {n} {ext}" for n in (1, 2, 3)}
    first = _push(portal, key, ext, _content(titles[1], section="tin-hoat-dong"))
    article_id = first.json()["article_id"]
    assert (
        _push(portal, key, ext, _content(titles[2], section="tin-hoat-dong")).json()["revision"]
        == 2
    )
    portal.wait_for(
        lambda: [h["title"] for h in _search(portal, ext)["hits"]] == [titles[2]],
        what="revision 2 public and indexed",
    )

    # Revision 1's events arrive again at every stage, after revision 2 (a late redelivery).
    injected: set[str] = set()
    for topic, _ in STAGES:
        raw = asyncio.run(kafka_events.read(topic, article_id))
        [old] = [e for e in raw if e["data"]["revision"] == 1][:1]
        late = decode(json.dumps({**old, "event_id": str(uuid.uuid4())}).encode())
        injected.add(str(late.event_id))
        asyncio.run(kafka_events.produce(topic, late))

    # Revision 3 follows on every stage's partition: once it is everywhere, so are the late ones.
    assert (
        _push(portal, key, ext, _content(titles[3], section="tin-hoat-dong")).json()["revision"]
        == 3
    )
    portal.wait_for(
        lambda: [h["title"] for h in _search(portal, ext)["hits"]] == [titles[3]],
        what="revision 3 public and indexed",
    )
    assert (_published_article(portal, article_id) or {}).get("title") == titles[3]
    for _, emitted in STAGES:
        if emitted is not None:
            assert _revisions(kafka_events, emitted, article_id, injected) == [1, 2, 3], emitted
    # The partner's status followed the revisions forward only (it comes to "published" through
    # ingest's status consumer, in batches, after search may already show the article).
    status = portal.wait_for(
        lambda: (
            (s := _status(portal, key, ext))["status_revision"] == 3
            and s["status"] == "published"
            and s
        ),
        what="status published at revision 3",
    )
    seen = [h["revision"] for h in status["history"]]
    assert seen == sorted(seen), status["history"]


def test_two_concurrent_pushes_of_one_article_end_with_the_newer_everywhere(
    portal: Portal, kafka_events: Any
) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("nd-race")
    titles = [f"Bản {letter} {ext}" for letter in ("A", "B")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(
                lambda t: _push(portal, key, ext, _content(t, section="tin-hoat-dong")), titles
            )
        )
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    # One after the other, whatever the race: revisions 1 and 2, and the second one wins.
    by_revision = {a.json()["revision"]: title for a, title in zip(answers, titles, strict=True)}
    assert sorted(by_revision) == [1, 2]
    article_id = answers[0].json()["article_id"]
    portal.wait_for(
        lambda: [h["title"] for h in _search(portal, ext)["hits"]] == [by_revision[2]],
        what="the newer push public and indexed",
    )
    assert (_published_article(portal, article_id) or {}).get("title") == by_revision[2]
    published = _revisions(kafka_events, ARTICLE_PUBLISHED.name, article_id, set())
    assert published == sorted(published) and published[-1] == 2
    # The partner status follows the pipeline's events through ingest's status consumer, in
    # batches: it reads "received" at revision 2 first, and comes to "published" after search.
    status = portal.wait_for(
        lambda: (
            (s := _status(portal, key, ext))["status_revision"] == 2
            and s["status"] == "published"
            and s
        ),
        what="status published at revision 2",
    )
    assert status["revision"] == 2


def test_agency_cannot_touch_another_agencys_content(portal: Portal) -> None:
    key_a = portal.api_key(PRE_REVIEW)
    key_b = portal.api_key(OTHER_AGENCY)
    ext = _unique("byt")
    b = _push(portal, key_b, ext, _content(f"Tin của Bộ Y tế {ext}"))
    b_id = b.json()["article_id"]
    # A's key cannot read, update or retract B's article by its portal id.
    by_id = portal.http.get(
        portal.url("ingest", f"/v1/articles/by-id/{b_id}"),
        headers={"Authorization": f"Bearer {key_a}"},
    )
    assert by_id.status_code == 403
    # A cannot publish into a section it was not granted.
    forbidden = _push(
        portal, key_a, _unique("hn"), _content("Lấn sang chuyên mục", section="tong-bi-thu")
    )
    assert forbidden.status_code == 403
    assert "tong-bi-thu" in forbidden.text
    # A's external id space is its own: the same id under A is a different article.
    same_ext = _push(portal, key_a, ext, _content(f"Tin của Hà Nội {ext}"))
    assert same_ext.json()["article_id"] != b_id


def test_invalid_payload_gets_422_naming_the_field(portal: Portal) -> None:
    key = portal.api_key(PRE_REVIEW)
    resp = portal.http.put(
        portal.url("ingest", f"/v1/articles/{_unique('hn')}"),
        json={"content": {"title": "", "section": "ct-tin-tuc-hoat-dong"}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 422
    assert "title" in resp.text
    assert (
        portal.http.put(
            portal.url("ingest", "/v1/articles/x"), json={"content": _content("Không khóa")}
        ).status_code
        == 401
    )


async def _produce(creds: dict[str, Any], topic: str, key: bytes, value: bytes) -> None:
    """As a partner configured by the partner guide: SASL_SSL, SCRAM-SHA-512, the portal's CA."""
    producer = AIOKafkaProducer(
        bootstrap_servers=creds["bootstrap_servers"],
        security_protocol="SASL_SSL",
        ssl_context=create_ssl_context(cadata=creds["ssl_ca_pem"]),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=creds["username"],
        sasl_plain_password=creds["password"],
        enable_idempotence=False,
        request_timeout_ms=15000,
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _dead_letters_for(
    kafka: dict[str, Any], topic: str, marker: bytes
) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        PARTNER_DEAD_LETTERS,
        **kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        for records in batches.values():
            for rec in records:
                data = json.loads(rec.value)["data"]
                if marker in base64.b64decode(data["original_value_b64"]):
                    found.append(data)
    finally:
        await consumer.stop()
    return found


def test_partner_kafka_topic_with_acls_and_dead_letters(portal: Portal) -> None:
    creds = portal.admin("POST", "ingest", f"/admin/v1/sources/{PRE_REVIEW}/kafka-credentials", {})
    other = portal.admin(
        "POST", "ingest", f"/admin/v1/sources/{OTHER_AGENCY}/kafka-credentials", {}
    )
    assert other["topic"] == partner_topic(OTHER_AGENCY)
    assert creds["bootstrap_servers"] == portal.settings.kafka_sasl_bootstrap
    key = portal.api_key(PRE_REVIEW)
    editor = portal.editor_token("editor")

    # Denied by the broker: an agency writes only its own topic.
    with pytest.raises((TopicAuthorizationFailedError, KafkaError)):
        asyncio.run(_produce(creds, partner_topic(OTHER_AGENCY), b"x", b"{}"))

    bad_marker = _unique("malformed").encode()
    asyncio.run(_produce(creds, creds["topic"], b"bad", b"{not json " + bad_marker))
    ext = _unique("hn-kafka")
    good = {"external_id": ext, "content": _content(f"Tin gửi qua Kafka {ext}")}
    asyncio.run(_produce(creds, creds["topic"], ext.encode(), json.dumps(good).encode()))

    article_id = article_id_for(PRE_REVIEW, ext)
    item = portal.wait_for(
        lambda: _queue_item(portal, editor, article_id), what="kafka item queued"
    )
    assert item["source"] == PRE_REVIEW
    dlq = portal.wait_for(
        lambda: asyncio.run(
            _dead_letters_for(admin_client_options(portal.settings), creds["topic"], bad_marker)
        ),
        what="dead letter",
    )
    assert dlq[0]["original_topic"] == creds["topic"]
    assert dlq[0]["reason"]
    errors = portal.http.get(
        portal.url("ingest", "/v1/errors"), headers={"Authorization": f"Bearer {key}"}
    ).json()
    listed = errors["items"] if isinstance(errors, dict) else errors
    assert any(e.get("topic") == creds["topic"] and e.get("reason") for e in listed), listed

    assert _approve(portal, editor, article_id, item["revision"]).status_code == 200
    portal.wait_for(lambda: _published_article(portal, article_id), what="kafka article published")


def test_one_trace_from_partner_request_to_search_indexing(portal: Portal) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("nd-trace")
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    resp = portal.http.put(
        portal.url("ingest", f"/v1/articles/{ext}"),
        json={"content": _content(f"Theo dấu một bài viết {ext}", section="tin-hoat-dong")},
        headers={"Authorization": f"Bearer {key}", "traceparent": traceparent},
    )
    assert resp.status_code in (200, 202), resp.text
    article_id = resp.json()["article_id"]
    portal.wait_for(lambda: article_id in _search_ids(portal, ext), what="indexed")

    def services_in_trace() -> set[str] | None:
        spans = portal.traces.trace(trace_id)
        names = {s.service for s in spans}
        wanted = {"ingest", "normalize", "moderation", "publishing", "search"}
        return names if wanted <= names else None

    services = portal.wait_for(services_in_trace, timeout_s=90, what="spans of all services")
    assert {"ingest", "normalize", "moderation", "publishing", "search"} <= services
    hops = [
        ("ingest", "article.ingested", "normalize"),
        ("normalize", "article.normalized", "moderation"),
        ("moderation", "article.reviewed", "publishing"),
        ("publishing", "article.published", "search"),
    ]

    def broken_link() -> str | None:
        """None when the causal chain is complete: each stage consumes the previous stage's event
        (its process span is a child of the producer's span, from the Kafka headers) and produces
        the next one from there; else the first missing link."""
        spans = portal.traces.trace(trace_id)
        by_id = {s.span_id: s for s in spans}

        def descends_from(span: Any, ancestor: Any) -> bool:
            while span.parent_span_id in by_id:
                span = by_id[span.parent_span_id]
                if span.span_id == ancestor.span_id:
                    return True
            return False

        cause = min((s for s in spans if s.service == "ingest"), key=lambda s: s.start_ns)
        for producer, topic, consumer in hops:
            processes = [
                s
                for s in spans
                if s.service == consumer
                and s.name == f"{topic} process"
                and s.parent_span_id in by_id
                and by_id[s.parent_span_id].service == producer
                and by_id[s.parent_span_id].start_ns <= s.start_ns
                and descends_from(s, cause)
            ]
            if not processes:
                return f"no {consumer} span consuming {topic} from {producer} in the trace"
            cause = processes[0]
        return None

    # Spans leave each service in batches: wait until the whole chain has arrived.
    portal.wait_for(lambda: broken_link() is None, timeout_s=90, what="the causal chain")
    assert broken_link() is None

    def orphans() -> list[tuple[str, str]]:
        """Spans whose parent is not in the trace (the partner's request's aside)."""
        spans = portal.traces.trace(trace_id)
        by_id = {s.span_id: s for s in spans}
        return [
            (s.service, s.name)
            for s in spans
            if s.parent_span_id
            and s.parent_span_id not in by_id
            and s.parent_span_id != traceparent.split("-")[2]
        ]

    # Every span but the partner's request has its parent inside this trace. A process exports
    # its spans in batches, a span when it ends: a child (the edge purger's HTTP call) can
    # arrive an export before its parent (the purger's batch), and is no orphan for that.
    with contextlib.suppress(AssertionError):
        portal.wait_for(lambda: not orphans(), timeout_s=30, what="every span's parent")
    assert not orphans(), orphans()


XML_FORBIDDEN = [chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + ["\ufffe", "\uffff"]
RAW_JUNK = "".join(XML_FORBIDDEN)
ENTITY_JUNK = "".join(f"&#{ord(c)};" for c in XML_FORBIDDEN) + "&#xD800;&#x1f;"


@pytest.mark.parametrize("junk", [RAW_JUNK, ENTITY_JUNK], ids=["raw", "entities"])
def test_characters_xml_forbids_never_break_a_feed_or_sitemap(portal: Portal, junk: str) -> None:
    key = portal.api_key(TRUSTED)
    ext = _unique("xml")
    title = f"Tin hoạt động{junk} {ext}"
    body = f"<p>Đoạn một{junk} của bài {ext}. Đảng Cộng sản Việt Nam lãnh đạo toàn diện.</p>"
    resp = _push(
        portal,
        key,
        ext,
        _content(title, section="tin-hoat-dong", body_html=body, summary=f"Tóm{junk} tắt"),
    )
    assert resp.status_code in (200, 202), resp.text
    article = portal.wait_for(
        lambda: _published_article(portal, resp.json()["article_id"]), what="published"
    )
    assert article["title"] == f"Tin hoạt động {ext}"

    def document(path: str) -> Any:
        got = portal.http.get(portal.url("publishing", path))
        assert got.status_code == 200, f"{path}: {got.status_code} {got.text[:300]}"
        return etree.fromstring(got.content)  # raises on a document that is not well-formed

    feeds = ["/rss/sections/tin-hoat-dong.xml", f"/rss/subsites/{TRUSTED}.xml"]
    for path in feeds:
        titles = [t.text for t in document(path).iter("title")]
        assert f"Tin hoạt động {ext}" in titles, path
    news = document("/sitemaps/news.xml")
    assert f"Tin hoạt động {ext}" in [t.text for t in news.iter("{*}title")]
    chunks = [loc.text for loc in document("/sitemap.xml").iter("{*}loc")]
    assert chunks
    urls = [u.text for chunk in chunks for u in document(urlsplit(chunk).path).iter("{*}loc")]
    assert any(u.endswith(f"/bai-viet/{article['slug']}") for u in urls)
    page = portal.http.get(portal.url("publishing", f"/bai-viet/{article['slug']}"))
    assert page.status_code == 200 and f"Tin hoạt động {ext}" in page.text


def test_an_articles_image_renditions_are_made_on_first_request(
    portal: Portal, partner_images: PartnerImages
) -> None:
    picture = io.BytesIO()
    Image.linear_gradient("L").resize((1200, 800)).convert("RGB").save(picture, "JPEG")
    ext = _unique("img")
    url = partner_images.add(f"{ext}.jpg", picture.getvalue())
    key = portal.api_key(TRUSTED)
    resp = _push(
        portal,
        key,
        ext,
        _content(f"Ảnh hội nghị {ext}", section="tin-hoat-dong", images=[{"url": url}]),
    )
    assert resp.status_code in (200, 202), resp.text
    article = portal.wait_for(
        lambda: _published_article(portal, resp.json()["article_id"]), what="published"
    )
    lead = article["lead_image"]
    assert lead is not None and sorted(int(w) for w in lead["renditions"]) == [320, 640, 1024, 1200]
    for width, rendition in lead["renditions"].items():
        first = portal.http.get(portal.url("publishing", f"/media/{rendition}"))
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(first.content)).size == (
            int(width),
            round(800 * int(width) / 1200),
        )
        again = portal.http.get(portal.url("publishing", f"/media/{rendition}"))
        assert again.status_code == 200 and again.content == first.content
    original = portal.http.get(portal.url("publishing", f"/media/{lead['object_key']}"))
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"


async def _write_oversized_event(portal: Portal, source: str) -> str:
    """An article.ingested event over the broker's limit in ingest's outbox, written through
    the outbox as a service built with a larger limit (or before sizes were checked) would."""
    external_id = _unique("qua-lon")
    article_id = article_id_for(source, external_id)
    event = ArticleIngestedEvent(
        producer="ingest",
        subject=article_id,
        data=ArticleIngested.model_validate(
            {
                "article_id": article_id,
                "source": source,
                "external_id": external_id,
                "revision": 1,
                "action": "upsert",
                "channel": "rest",
                "received_at": datetime.now(UTC),
                "content": {
                    "title": "Văn kiện rất dài",
                    "section": "ct-tin-tuc-hoat-dong",
                    "body_html": "<p>" + "ệ" * (MAX_MESSAGE_BYTES // 3 + 1000) + "</p>",
                },
            }
        ),
    )
    outbox = Outbox(outbox_table(new_metadata()), max_message_bytes=4 * MAX_MESSAGE_BYTES)
    password = service_secrets(portal.settings, "ingest").database_password
    engine = make_engine(portal.settings.database_url("ingest", "ingest", password), pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await outbox.add(session, ARTICLE_INGESTED.name, event, fair_key=source)
    finally:
        await engine.dispose()
    return external_id


def test_an_event_too_large_for_kafka_is_set_aside_visibly_and_other_news_is_published(
    portal: Portal,
) -> None:
    asyncio.run(_write_oversized_event(portal, OTHER_AGENCY))

    # Another agency's news, committed behind it, is published.
    key = portal.api_key(TRUSTED)
    ext = _unique("nd-sau")
    resp = _push(portal, key, ext, _content(f"Tin sau sự kiện lớn {ext}", section="tin-hoat-dong"))
    assert resp.status_code == 202, resp.text
    article_id = resp.json()["article_id"]
    portal.wait_for(lambda: _published_article(portal, article_id), what="the next item published")

    # The oversized event is set aside with its reason, on the editors' dashboard...
    token = portal.editor_token("chief_editor")

    def dashboard() -> str | None:
        resp = portal.http.get(
            portal.url("moderation", f"/desk/dashboard?source={OTHER_AGENCY}"),
            cookies={"desk_session": token},
        )
        assert resp.status_code == 200, resp.text
        return resp.text if "over the broker&#39;s limit" in resp.text else None

    page = portal.wait_for(dashboard, timeout_s=90, what="the set-aside event on the dashboard")
    assert "Sự kiện quá lớn, không gửi đi được" in page
    assert "outbox_dead" in page

    # ...and in ingest's metrics, for the SREs.
    def set_aside_rows() -> float:
        text = portal.http.get(portal.url("ingest", "/metrics")).text
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("portal_outbox_dead")
        )

    portal.wait_for(lambda: set_aside_rows() >= 1, what="portal_outbox_dead on ingest")
