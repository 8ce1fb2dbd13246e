"""An article whose article.ingested event the broker would refuse is refused where it enters,
on every channel, with the reason: 413 over REST, a dead letter (and /v1/errors) over Kafka, a
refused item in a pulled source's health. Nothing is stored or emitted for it, and the next
normal item goes through.

The broker's limit (4 MiB) is far above the 2 MiB partner body limit today, so these tests lower
the limit the outbox checks against, as a broker configured with a smaller limit would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from portal_contracts.articles import article_id_for
from portal_contracts.topics import ARTICLE_INGESTED, PARTNER_DEAD_LETTERS
from portal_ingest.db import outbox
from portal_ingest.pull.domain import external_id_for

from .conftest import Ingest, partner_producer, read_events
from .feed_samples import VN, Entry, rss
from .feed_server import FeedServer
from .test_partner_kafka_stack import _wait_errors

pytestmark = pytest.mark.stack

LIMIT = 20_000


@pytest.fixture
def small_broker_limit() -> Iterator[None]:
    before = outbox.max_message_bytes
    outbox.max_message_bytes = LIMIT
    try:
        yield
    finally:
        outbox.max_message_bytes = before


def _content(title: str, paragraphs: int) -> dict[str, Any]:
    return {
        "title": title,
        "section": "ct-tin-tuc-hoat-dong",
        "body_html": "".join(
            f"<p>Đoạn {i}: Đảng bộ tỉnh lãnh đạo thực hiện nhiệm vụ chính trị.</p>"
            for i in range(paragraphs)
        ),
    }


async def _emitted(ingest: Ingest, source: str, external_ids: list[str], want: int) -> set[str]:
    ids = {article_id_for(source, e) for e in external_ids}
    events = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: e.subject in ids,
        want=want,
        settle_s=1.0,
    )
    return {e.subject for e in events}


async def test_over_rest_an_article_too_large_to_pass_on_gets_413_with_the_reason(
    ingest: Ingest, small_broker_limit: None
) -> None:
    source, headers = await ingest.partner()
    normal = f"vua-{uuid.uuid4().hex[:8]}"
    resp = await ingest.http.put(
        f"/v1/articles/{normal}", json={"content": _content("Tin thường", 5)}, headers=headers
    )
    assert resp.status_code == 202, resp.text

    huge = f"lon-{uuid.uuid4().hex[:8]}"
    resp = await ingest.http.put(
        f"/v1/articles/{huge}", json={"content": _content("Tin rất dài", 400)}, headers=headers
    )

    assert resp.status_code == 413, resp.text
    assert resp.json()["code"] == "too_large"
    assert f"over the broker's limit of {LIMIT:,} bytes" in resp.json()["detail"]
    assert (await ingest.http.get(f"/v1/articles/{huge}", headers=headers)).status_code == 404
    assert await _emitted(ingest, source, [normal, huge], want=1) == {
        article_id_for(source, normal)
    }


async def test_over_kafka_it_is_dead_lettered_and_listed_and_the_next_message_goes(
    ingest: Ingest, small_broker_limit: None
) -> None:
    source, headers = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    huge, normal = f"lon-{uuid.uuid4().hex[:8]}", f"vua-{uuid.uuid4().hex[:8]}"
    producer = partner_producer(creds)
    await producer.start()
    try:
        for external_id, paragraphs in ((huge, 400), (normal, 5)):
            value = {"external_id": external_id, "content": _content(external_id, paragraphs)}
            await producer.send_and_wait(
                creds["topic"], json.dumps(value, ensure_ascii=False).encode(), key=b"k"
            )
    finally:
        await producer.stop()

    assert await _emitted(ingest, source, [normal, huge], want=1) == {
        article_id_for(source, normal)
    }
    [error] = await _wait_errors(ingest, headers, 1)
    assert (error["external_id"], error["error_type"]) == (huge, "too_large")
    assert "over the broker's limit" in error["reason"]
    [letter] = await read_events(
        ingest.kafka,
        PARTNER_DEAD_LETTERS,
        lambda e: getattr(e.data, "original_topic", None) == creds["topic"],
        want=1,
    )
    assert letter.data.error_type == "too_large"  # type: ignore[attr-defined]


async def test_from_a_feed_it_is_a_refused_item_in_the_sources_health(
    ingest: Ingest, feed_server: FeedServer, small_broker_limit: None
) -> None:
    source = await ingest.new_source()
    uid = uuid.uuid4().hex[:8]
    huge = Entry(
        f"lon-{uid}",
        "Tin rất dài",
        f"https://tinh.example.vn/{uid}/lon.html",
        published=_now(),
        body="".join(f"<p>Đoạn {i}: nội dung rất dài của bài.</p>" for i in range(600)),
    )
    normal = Entry(f"vua-{uid}", "Tin thường", f"https://tinh.example.vn/{uid}/vua.html", _now())
    url = feed_server.route(
        f"/{uid}/rss.xml", body=rss([huge, normal]).encode(), content_type="application/rss+xml"
    )
    resp = await ingest.http.put(
        f"/admin/v1/sources/{source}/feeds",
        json={"connectors": [{"kind": "rss", "url": url, "section": "ct-tin-tuc-hoat-dong"}]},
        headers=ingest.admin_headers,
    )
    assert resp.status_code == 200, resp.text

    poll = (
        await ingest.http.post(f"/admin/v1/sources/{source}/fetch", headers=ingest.admin_headers)
    ).json()["polls"][0]

    assert poll["counts"]["new"] == 1 and poll["counts"]["refused"] == 1, poll
    items = (
        await ingest.http.get(
            f"/admin/v1/sources/{source}/feed-items",
            params={"state": "refused"},
            headers=ingest.admin_headers,
        )
    ).json()["items"]
    assert [i["url"] for i in items] == [huge.link]
    assert "over the broker's limit" in items[0]["reason"]
    ids = [external_id_for(g) for g in (huge.guid, normal.guid)]
    assert await _emitted(ingest, source, ids, want=1) == {article_id_for(source, ids[1])}


def _now() -> datetime:
    return datetime.now(VN).replace(microsecond=0)
