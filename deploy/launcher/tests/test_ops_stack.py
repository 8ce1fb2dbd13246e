"""`portal lag`, `portal dlq` and `portal rebuild` against the real local stack.

The commands run as an SRE runs them (the `portal` executable, this stack's environment). Lag and
dead letters use this run's own topic and consumer-group names; the rebuilds run the search and
publishing services as processes (started here unless they already run).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    ArticleReviewed,
    ArticleReviewedEvent,
    NormalizedArticle,
    PublishedState,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import ARTICLE_PUBLISHED, ARTICLE_REVIEWED
from portal_launcher import stack as launcher
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.credentials import admin_token
from portal_launcher.ops_kafka import partitions
from portal_launcher.services import service_environment, service_port
from portal_launcher.settings import StackSettings

pytestmark = pytest.mark.stack

RUN = uuid.uuid4().hex[:8]
PORTAL = str(Path(sys.executable).with_name("portal"))
WAIT_S = 90.0
T = TypeVar("T")


def portal(*args: str) -> str:
    """Run the `portal` command; fail the test with its output when it fails."""
    proc = subprocess.run(
        [PORTAL, *args], capture_output=True, text=True, env=os.environ.copy(), check=False
    )
    assert proc.returncode == 0, f"portal {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def portal_json(*args: str) -> Any:
    return json.loads(portal(*args, "--json"))


def wait_for(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def records_of(kafka: dict[str, Any], topic: str, key: bytes) -> list[Any]:
    """Every record of ``topic`` with ``key`` up to the end offsets of now."""

    async def read() -> list[Any]:
        tps = await partitions(kafka, [topic])
        assert tps, f"no topic {topic}"
        consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            found = []
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for batch in (await consumer.getmany(*tps, timeout_ms=500)).values():
                    found += [r for r in batch if r.key == key]
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


async def produce(
    kafka: dict[str, Any], topic: str, records: list[tuple[bytes | None, bytes]]
) -> None:
    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


# --- lag -------------------------------------------------------------------------------------


async def consume_all_and_commit(kafka: dict[str, Any], topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        **kafka,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        tps = list(consumer.assignment())
        end = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            await consumer.getmany(timeout_ms=500)
        await consumer.commit()
    finally:
        await consumer.stop()


def test_lag_shows_the_backlog_of_a_stopped_group_then_zero(stack_settings: StackSettings) -> None:
    kafka = admin_client_options(stack_settings)
    topic, group = f"test.ops-lag.{RUN}", f"test-ops-lag-{RUN}"

    async def setup() -> None:
        admin = AIOKafkaAdminClient(**kafka)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        finally:
            await admin.close()
        await produce(kafka, topic, [(f"k{i}".encode(), b"x") for i in range(4)])
        await consume_all_and_commit(kafka, topic, group)
        # The group stops; five more arrive.
        await produce(kafka, topic, [(f"k{i}".encode(), b"y") for i in range(5)])

    asyncio.run(setup())
    report = portal_json("lag", "--group", group)
    rows = [r for r in report["partitions"] if r["topic"] == topic]
    assert sorted(r["partition"] for r in rows) == [0, 1]
    assert sum(r["lag"] for r in rows) == 5
    assert all(r["lag"] == r["end"] - r["committed"] for r in rows)
    assert report["totals"] == [{"group": group, "topic": topic, "lag": 5, "partitions": 2}]
    assert f"{group}" in portal("lag", "--group", group)  # the table names the group

    asyncio.run(consume_all_and_commit(kafka, topic, group))
    assert portal_json("lag", "--group", group)["total"] == 0


# --- dead letters ------------------------------------------------------------------------------


def dead_letter(
    group: str, reason: str, key: bytes, value: bytes, topic: str = ARTICLE_PUBLISHED.name
) -> DeadLetterEvent:
    return DeadLetterEvent(
        producer="test",
        subject=f"{topic}/0/0",
        data=DeadLetter(
            original_topic=topic,
            original_partition=0,
            original_offset=0,
            original_key_b64=base64.b64encode(key).decode(),
            original_value_b64=base64.b64encode(value).decode(),
            original_headers={
                "content-type": base64.b64encode(b"application/json").decode(),
                "x-run": base64.b64encode(RUN.encode()).decode(),
            },
            consumer_group=group,
            reason=reason,
            error_type="processing",
            failed_at=datetime.now(UTC),
        ),
    )


def published(article_id: str, source: str, words: str) -> ArticlePublishedEvent:
    slug = f"thu-nghiem-{article_id[:8]}"
    now = datetime.now(UTC)
    return ArticlePublishedEvent(
        producer="ops-test",
        subject=article_id,
        data=ArticlePublished(
            article_id=article_id,
            source=source,
            revision=1,
            state=PublishedState.PUBLISHED,
            slug=slug,
            url_path=f"/bai-viet/{slug}",
            published_at=now,
            updated_at=now,
            article=NormalizedArticle(
                title=f"Bài thử nghiệm sửa chữa {words}",
                summary=f"Tóm tắt {words}.",
                body_html=f"<p>Nội dung {words}.</p>",
                body_text=f"Nội dung {words}.",
            ),
        ),
    )


def test_redrive_sends_once_and_dry_run_sends_nothing(stack_settings: StackSettings) -> None:
    kafka = admin_client_options(stack_settings)
    dlq = ARTICLE_PUBLISHED.dead_letter_topic
    group = f"test-ops-dlq-{RUN}"
    first = published(str(uuid.uuid4()), f"test-ops-{RUN}", f"mot{RUN}")
    second = published(str(uuid.uuid4()), f"test-ops-{RUN}", f"hai{RUN}")
    forged_key = f"forged-{RUN}".encode()
    letters = [
        dead_letter(group, "index mapping bug", first.subject.encode(), encode(first)),
        dead_letter(group, "timeout of the schema check", second.subject.encode(), encode(second)),
        # A dead letter naming a topic outside this dead-letter topic is never sent anywhere.
        dead_letter(group, "index mapping bug", forged_key, b"{}", topic=ARTICLE_REVIEWED.name),
    ]
    asyncio.run(produce(kafka, dlq, [(ev.subject.encode(), encode(ev)) for ev in letters]))

    listed = portal_json("dlq", "list", dlq)
    (item,) = listed
    mine = [c for c in item["counts"] if c["consumer_group"] == group]
    assert sorted((c["error_type"], c["count"]) for c in mine) == [
        ("invalid", 1),
        ("processing", 1),
        ("processing", 1),
    ]
    assert item["pending"][group] == 2

    dry = portal_json("dlq", "redrive", dlq, "--group", group, "--dry-run")
    assert dry["sent"] == 2 and dry["dry_run"] is True
    assert records_of(kafka, ARTICLE_PUBLISHED.name, first.subject.encode()) == []

    # The fix covers one cause: redrive only its dead letters.
    once = portal_json("dlq", "redrive", dlq, "--group", group, "--reason-contains", "MAPPING")
    assert once["groups"] == [
        {"consumer_group": group, "redriven": 1, "already_redriven": 0, "left_pending": 1}
    ]
    (copy,) = records_of(kafka, ARTICLE_PUBLISHED.name, first.subject.encode())
    assert copy.value == encode(first)
    headers = dict(copy.headers)
    assert headers["x-run"] == RUN.encode()
    assert headers["content-type"] == b"application/json"
    assert headers["portal-redriven-from"].startswith(f"{dlq}/0/".encode())
    assert records_of(kafka, ARTICLE_PUBLISHED.name, second.subject.encode()) == []

    rest = portal_json("dlq", "redrive", dlq, "--group", group)
    assert rest["groups"][0] | {} == {
        "consumer_group": group,
        "redriven": 1,
        "already_redriven": 1,
        "left_pending": 0,
    }
    again = portal_json("dlq", "redrive", dlq, "--group", group)
    assert again["sent"] == 0
    assert again["groups"][0]["already_redriven"] == 2
    assert len(records_of(kafka, ARTICLE_PUBLISHED.name, first.subject.encode())) == 1
    assert len(records_of(kafka, ARTICLE_PUBLISHED.name, second.subject.encode())) == 1
    assert records_of(kafka, ARTICLE_REVIEWED.name, forged_key) == []
    assert portal_json("dlq", "list", dlq)[0]["pending"][group] == 0


def test_unknown_dead_letter_topic_is_refused(stack_settings: StackSettings) -> None:
    proc = subprocess.run(
        [PORTAL, "dlq", "redrive", "__consumer_offsets"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "no dead-letter topic" in proc.stderr


# --- rebuilds through the services -----------------------------------------------------------


@pytest.fixture(scope="module")
def services(stack_settings: StackSettings) -> Iterator[StackSettings]:
    wanted = ("search", "publishing")
    started = [c for c in launcher.services(stack_settings, wanted) if not c.is_running()]
    if started:
        launcher.services_up(stack_settings, tuple(c.service for c in started), say=lambda _: None)
    try:
        yield stack_settings
    finally:
        for comp in started:
            comp.stop()


def url(settings: StackSettings, service: str, path: str) -> str:
    return f"http://{settings.host}:{service_port(settings, service)}{path}"


def admin_headers(settings: StackSettings, service: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token(settings, service)}"}


def test_rebuild_search_restores_a_deleted_index(services: StackSettings) -> None:
    words = f"phuchoi{RUN}"
    event = published(str(uuid.uuid4()), f"test-ops-{RUN}", words)
    asyncio.run(
        produce(
            admin_client_options(services),
            ARTICLE_PUBLISHED.name,
            [(event.subject.encode(), encode(event))],
        )
    )

    def hits() -> list[str]:
        resp = httpx.get(url(services, "search", "/v1/search"), params={"q": words})
        if resp.status_code != 200:
            return []
        return [h["article_id"] for h in resp.json()["hits"]]

    assert wait_for(hits, "the article searchable") == [event.subject]
    info = httpx.get(
        url(services, "search", "/admin/v1/index"), headers=admin_headers(services, "search")
    )
    index = info.json()["index"]
    assert httpx.delete(f"{services.opensearch_url}/{index}").status_code == 200
    assert hits() == []

    out = portal("rebuild", "search")
    assert "/admin/v1/reindex" in out and "/admin/v1/questions/reindex" in out
    assert hits() == [event.subject]
    after = httpx.get(
        url(services, "search", "/admin/v1/index"), headers=admin_headers(services, "search")
    )
    assert after.json()["index"] != index
    assert after.json()["documents"] >= 1


def reviewed(article_id: str, source: str, title: str) -> ArticleReviewedEvent:
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=source,
            external_id=article_id[:12],
            revision=1,
            decision=ReviewDecision.APPROVED,
            reviewer="bientapvien",
            reviewed_at=datetime.now(UTC),
            article=NormalizedArticle(
                title=title,
                summary="Tóm tắt bài viết về công tác xây dựng Đảng.",
                body_html="<p>Nội dung <strong>bài viết</strong>.</p>",
                body_text="Nội dung bài viết.",
                author="Phóng viên",
            ),
        ),
    )


def test_rebuild_publishing_restores_a_wiped_store_without_new_events(
    services: StackSettings,
) -> None:
    source = f"test-ops-{RUN}"
    article_id = article_id_for(source, uuid.uuid4().hex)
    event = reviewed(article_id, source, f"Khôi phục kho bài {RUN}")
    kafka = admin_client_options(services)
    asyncio.run(produce(kafka, ARTICLE_REVIEWED.name, [(article_id.encode(), encode(event))]))
    # The published event carries the slug the public page answers on.
    (out,) = wait_for(
        lambda: records_of(kafka, ARTICLE_PUBLISHED.name, article_id.encode()),
        "article.published of the approved article",
    )
    path = json.loads(out.value)["data"]["url_path"]
    slug = path.rsplit("/", 1)[-1]
    page = url(services, "publishing", f"/v1/articles/{slug}")
    before = wait_for(lambda: (r := httpx.get(page)).status_code == 200 and r.json(), "the page")

    database = service_environment(services, "publishing")["DATABASE_URL"]

    async def sql(query: str) -> Any:
        conn = await asyncpg.connect(database.replace("+asyncpg", ""))
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    asyncio.run(sql("TRUNCATE articles"))
    # The page cache hears of the wipe through PostgreSQL's NOTIFY, a moment after the commit.
    wait_for(lambda: httpx.get(page).status_code == 404, "the wiped article to answer 404")

    first = json.loads(portal("rebuild", "publishing").split(": ", 1)[1])
    assert first["restored"] >= 1
    restored = httpx.get(page)
    assert restored.status_code == 200
    assert restored.json() == before  # same slug, times, text: what readers had

    second = json.loads(portal("rebuild", "publishing").split(": ", 1)[1])
    assert second["restored"] == 0
    assert second["unchanged"] >= first["restored"]
    # Nothing was emitted: no outbox rows, and still exactly one event for the article.
    assert asyncio.run(sql("SELECT count(*) FROM outbox")) == 0
    assert len(records_of(kafka, ARTICLE_PUBLISHED.name, article_id.encode())) == 1
