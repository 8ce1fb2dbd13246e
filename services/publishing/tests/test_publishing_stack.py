"""The publishing service against the real local stack (Kafka, PostgreSQL).

The service runs in-process with its real lifespan (migrations, consumer, outbox relay); review
decisions are produced to the real `article.reviewed` topic and the emitted `article.published`
events are read back from Kafka. Ids are unique per run: the stack is shared.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager
from faststream.kafka import KafkaBroker
from lxml import etree

from portal_contracts.articles import (
    ArticlePublishedEvent,
    ArticleReviewed,
    ArticleReviewedEvent,
    NormalizedArticle,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.codec import decode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.topics import ARTICLE_PUBLISHED, ARTICLE_REVIEWED
from portal_launcher.components.kafka import admin_client_options, admin_service_settings
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_publishing.app import create_app
from portal_publishing.domain import make_slug
from portal_publishing.settings import Settings
from portal_runtime.kafka import make_broker, publish_event
from portal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.stack

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed"
RUN = uuid.uuid4().hex[:8]
SUBSITE = f"test-pub-{RUN}"  # this run's own sub-site: its lists hold only this run's articles
PAGED = f"test-page-{RUN}"
TEMPORARY = f"test-tmp-{RUN}"
NS = {
    "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "news": "http://www.google.com/schemas/sitemap-news/0.9",
}
T = TypeVar("T")
WAIT_S = 60.0


def site_payload(*extra_subsites: str) -> dict[str, Any]:
    """What `portal seed` sends: site.yaml plus the sub-sites of sources.yaml."""
    site = yaml.safe_load((SEED / "site.yaml").read_text())
    sources = yaml.safe_load((SEED / "sources.yaml").read_text())
    subsites = [
        {"code": s["code"], "name": s["name"], "kind": s["kind"]} for s in sources["sources"]
    ]
    subsites += [
        {"code": c, "name": f"Chuyên trang thử {c}", "kind": "province"} for c in extra_subsites
    ]
    return {
        "blocks": site["blocks"],
        "standard_sections": sources["standard_sections"],
        "subsites": subsites,
    }


@dataclass
class Harness:
    client: httpx.AsyncClient
    settings: Settings
    broker: KafkaBroker
    admin: dict[str, str]
    kafka: dict[str, Any]  # the stack's operator: reads any topic

    async def send(self, event: ArticleReviewedEvent) -> None:
        await publish_event(self.broker, ARTICLE_REVIEWED.name, event)

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.settings.database_url.replace("+asyncpg", ""))

    async def processed(self, event_id: uuid.UUID) -> None:
        """Wait until the consumer has committed the effect of ``event_id``."""

        async def check() -> bool:
            conn = await self.db()
            try:
                row = await conn.fetchval(
                    "SELECT 1 FROM processed_events WHERE event_id = $1", event_id
                )
            finally:
                await conn.close()
            return row is not None

        await wait_for(check, what=f"event {event_id} processed")

    async def outbox_drained(self) -> None:
        async def check() -> bool:
            conn = await self.db()
            try:
                return int(await conn.fetchval("SELECT count(*) FROM outbox")) == 0
            finally:
                await conn.close()

        await wait_for(check, what="outbox relayed")

    async def published_events(self, article_id: str) -> list[ArticlePublishedEvent]:
        """Every article.published event of ``article_id`` now in Kafka, oldest first."""
        await self.outbox_drained()
        consumer = AIOKafkaConsumer(**self.kafka, enable_auto_commit=False)
        await consumer.start()
        try:
            # The stack creates the topic from the registry, with its partition count.
            parts = [
                TopicPartition(ARTICLE_PUBLISHED.name, p)
                for p in range(ARTICLE_PUBLISHED.partitions)
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            end = await consumer.end_offsets(parts)
            found = []
            while [p for p in parts if await consumer.position(p) < end[p]]:
                batch = await consumer.getmany(*parts, timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        if record.key == article_id.encode():
                            event = decode(record.value, ArticlePublishedEvent)
                            assert isinstance(event, ArticlePublishedEvent)
                            found.append(event)
            return found
        finally:
            await consumer.stop()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)


async def wait_for(check: Callable[[], Awaitable[T | None]], *, what: str) -> T:
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def h(stack_settings: StackSettings) -> AsyncIterator[Harness]:
    env = service_environment(stack_settings, "publishing")
    settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    # Cached pages must be dropped by changes, never by their age, within these tests.
    settings.page_cache_ttl_s = 3600
    app = create_app(settings)
    broker = make_broker(
        ServiceSettings(**admin_service_settings(stack_settings), service_name="test-moderation"),
        None,
    )
    await broker.start()
    try:
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://publishing") as c:
                harness = Harness(
                    client=c,
                    settings=settings,
                    broker=broker,
                    admin={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
                    kafka=admin_client_options(stack_settings),
                )
                resp = await c.put(
                    "/admin/v1/site", json=site_payload(SUBSITE, PAGED), headers=harness.admin
                )
                assert resp.status_code == 200, resp.text
                yield harness
    finally:
        await broker.stop()


def reviewed(
    article_id: str,
    *,
    revision: int,
    decision: ReviewDecision = ReviewDecision.APPROVED,
    title: str | None = None,
    section: str | None = "ct-tin-tuc-hoat-dong",
    source: str = SUBSITE,
    reviewed_at: datetime | None = None,
    with_article: bool | None = None,
) -> ArticleReviewedEvent:
    if with_article is None:
        with_article = decision in (ReviewDecision.APPROVED, ReviewDecision.AUTO_PUBLISHED)
    article = (
        NormalizedArticle(
            title=title or f"Bài viết thử nghiệm {article_id[:8]}",
            summary="Tóm tắt bài viết về công tác xây dựng Đảng.",
            body_html="<p>Nội dung <strong>bài viết</strong>.</p>",
            body_text="Nội dung bài viết.",
            author="Phóng viên",
            section=section,
            categories=["Thời sự"],
        )
        if with_article
        else None
    )
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=source,
            external_id=article_id[:12],
            revision=revision,
            decision=decision,
            reviewer="policy:trusted"
            if decision == ReviewDecision.AUTO_PUBLISHED
            else "bientapvien",
            reviewed_at=reviewed_at or datetime.now(UTC),
            article=article,
        ),
    )


def new_id(source: str = SUBSITE) -> str:
    return article_id_for(source, uuid.uuid4().hex)


async def wait_article(
    h: Harness, slug: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        resp = await h.get(f"/v1/articles/{slug}")
        if resp.status_code == 200 and predicate(resp.json()):
            data: dict[str, Any] = resp.json()
            return data
        return None

    return await wait_for(check, what=f"article {slug}")


async def walk(h: Harness, path: str, limit: int = 50, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query: dict[str, Any] = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        resp = await h.get(path, params=query)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the list never ends")


def rss_links(body: bytes) -> list[str]:
    return [str(x) for x in etree.fromstring(body).xpath("/rss/channel/item/link/text()")]


async def sitemap_urls(h: Harness) -> list[str]:
    index = await h.get("/sitemap.xml")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("application/xml")
    urls: list[str] = []
    for loc in etree.fromstring(index.content).xpath("sm:sitemap/sm:loc/text()", namespaces=NS):
        if "/sitemaps/articles-" in loc:
            chunk = await h.get(str(loc).removeprefix(h.settings.base_url))
            assert chunk.status_code == 200
            urls += [
                str(u)
                for u in etree.fromstring(chunk.content).xpath(
                    "sm:url/sm:loc/text()", namespaces=NS
                )
            ]
    return urls


async def news_urls(h: Harness) -> list[str]:
    resp = await h.get("/sitemaps/news.xml")
    assert resp.status_code == 200
    root = etree.fromstring(resp.content)
    return [str(u) for u in root.xpath("sm:url/sm:loc/text()", namespaces=NS)]


# --- site structure ------------------------------------------------------------------------------


async def test_site_structure_is_admin_only_and_public_to_read(h: Harness) -> None:
    payload = site_payload(SUBSITE, PAGED)
    assert (await h.client.put("/admin/v1/site", json=payload)).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert (await h.client.put("/admin/v1/site", json=payload, headers=wrong)).status_code == 401

    bad = site_payload(SUBSITE, PAGED)
    bad["standard_sections"].append("khong-ton-tai")
    resp = await h.client.put("/admin/v1/site", json=bad, headers=h.admin)
    assert resp.status_code == 422
    assert "standard_sections" in resp.text

    huge = b'{"blocks": [' + b" " * h.settings.admin_max_body_bytes + b"]}"
    resp = await h.client.put(
        "/admin/v1/site",
        content=huge,
        headers={**h.admin, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413

    site = (await h.get("/v1/site")).json()
    blocks = {b["code"]: b for b in site["blocks"]}
    assert [s["code"] for s in blocks["tin-hang-ngay"]["sections"]][:2] == [
        "tong-bi-thu",
        "chu-tich-nuoc",
    ]
    assert blocks["du-lieu"]["name"] == "Dữ liệu, văn kiện"
    assert site["standard_sections"] == [
        "ct-tin-tuc-hoat-dong",
        "ct-xay-dung-dang",
        "ct-van-ban-tai-lieu",
    ]
    assert {"bao-nhan-dan", SUBSITE, PAGED} <= {s["code"] for s in site["subsites"]}


async def test_replacing_the_site_deactivates_what_is_no_longer_listed(h: Harness) -> None:
    with_tmp = await h.client.put(
        "/admin/v1/site", json=site_payload(SUBSITE, PAGED, TEMPORARY), headers=h.admin
    )
    assert with_tmp.status_code == 200
    assert (await h.get(f"/v1/subsites/{TEMPORARY}/articles")).status_code == 200
    aid = new_id(TEMPORARY)
    await h.send(reviewed(aid, revision=1, source=TEMPORARY, title="Bài của chuyên trang tạm"))
    slug = make_slug("Bài của chuyên trang tạm", aid)
    await wait_article(h, slug, lambda a: True)

    resp = await h.client.put("/admin/v1/site", json=site_payload(SUBSITE, PAGED), headers=h.admin)
    assert resp.status_code == 200
    assert TEMPORARY not in {s["code"] for s in resp.json()["subsites"]}
    gone = await h.get(f"/v1/subsites/{TEMPORARY}/articles")
    assert gone.status_code == 404
    assert gone.json()["detail"] == f"sub-site {TEMPORARY!r} does not exist"
    # Its article stays published (and readable by its slug).
    assert (await h.get(f"/v1/articles/{slug}")).status_code == 200


async def test_unknown_things_answer_404_with_a_reason(h: Harness) -> None:
    resp = await h.get("/v1/sections/khong-co/articles")
    assert resp.status_code == 404
    assert resp.json()["detail"] == "section 'khong-co' does not exist"
    resp = await h.get(f"/v1/subsites/{SUBSITE}/articles", params={"section": "khong-co"})
    assert resp.status_code == 404
    assert "section 'khong-co'" in resp.json()["detail"]
    assert (await h.get("/v1/subsites/khong-co/articles")).status_code == 404
    assert (await h.get("/v1/articles/khong-co-bai-nay")).status_code == 404
    assert (await h.get("/rss/sections/khong-co.xml")).status_code == 404
    assert (await h.get("/rss/subsites/khong-co.xml")).status_code == 404
    assert (await h.get("/sitemaps/articles-99999.xml")).status_code == 404


# --- the article lifecycle -----------------------------------------------------------------------


async def test_approved_article_appears_everywhere_and_is_announced(h: Harness) -> None:
    aid = new_id()
    title = f"Đại hội Đảng bộ tỉnh nhiệm kỳ mới {aid[:6]}"
    event = reviewed(aid, revision=1, title=title, decision=ReviewDecision.AUTO_PUBLISHED)
    await h.send(event)
    slug = make_slug(title, aid)
    url = f"{h.settings.base_url}/bai-viet/{slug}"

    article = await wait_article(h, slug, lambda a: True)
    assert article["article_id"] == aid
    assert article["title"] == title
    assert article["url_path"] == f"/bai-viet/{slug}"
    assert article["url"] == url
    assert article["revision"] == 1
    assert article["section"] == {"code": "ct-tin-tuc-hoat-dong", "name": "Tin tức, hoạt động"}
    assert article["subsite"]["code"] == SUBSITE
    assert article["body_html"] == "<p>Nội dung <strong>bài viết</strong>.</p>"
    assert article["categories"] == ["Thời sự"]

    section_items = await walk(h, "/v1/sections/ct-tin-tuc-hoat-dong/articles")
    assert aid in [a["article_id"] for a in section_items]
    subsite = (await h.get(f"/v1/subsites/{SUBSITE}/articles")).json()
    assert subsite["subsite"]["code"] == SUBSITE
    assert aid in [a["article_id"] for a in subsite["items"]]
    filtered = await h.get(
        f"/v1/subsites/{SUBSITE}/articles", params={"section": "ct-tin-tuc-hoat-dong"}
    )
    assert aid in [a["article_id"] for a in filtered.json()["items"]]
    other = await h.get(f"/v1/subsites/{SUBSITE}/articles", params={"section": "ct-xay-dung-dang"})
    assert aid not in [a["article_id"] for a in other.json()["items"]]

    home = (await h.get("/v1/home")).json()
    block = next(b for b in home["blocks"] if b["code"] == "chuyen-trang")
    assert aid in [a["article_id"] for a in block["articles"]]
    assert {p["section"]["code"] for p in home["leaders"]} >= {"tong-bi-thu", "thu-tuong"}

    section_rss = await h.get("/rss/sections/ct-tin-tuc-hoat-dong.xml")
    assert section_rss.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert url in rss_links(section_rss.content)
    assert url in rss_links((await h.get(f"/rss/subsites/{SUBSITE}.xml")).content)
    assert url in await sitemap_urls(h)
    assert url in await news_urls(h)
    page = await h.get(f"/bai-viet/{slug}")
    assert page.status_code == 200 and title in page.text
    # No script may run on the page, whatever an article holds; the first answer and the
    # stored one alike.
    for answer in (page, await h.get(f"/bai-viet/{slug}")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp

    events = await h.published_events(aid)
    assert len(events) == 1
    published = events[0]
    assert published.producer == "publishing"
    assert published.subject == aid
    assert published.data.state == "published"
    assert published.data.slug == slug
    assert published.data.url_path == f"/bai-viet/{slug}"
    assert published.data.revision == 1
    assert published.data.article is not None and published.data.article.title == title


async def test_editorial_update_and_late_older_revision(h: Harness) -> None:
    aid = new_id()
    await h.send(reviewed(aid, revision=2, title="Bản thứ hai"))
    slug = make_slug("Bản thứ hai", aid)
    await wait_article(h, slug, lambda a: True)

    # Same revision, edited by an editor: the title changes, the slug stays.
    await h.send(reviewed(aid, revision=2, title="Bản thứ hai, đã biên tập"))
    await wait_article(h, slug, lambda a: a["title"] == "Bản thứ hai, đã biên tập")

    # An older revision arriving late changes nothing, nor does a rejection.
    late = reviewed(aid, revision=1, title="Bản cũ đến muộn")
    await h.send(late)
    rejected = reviewed(aid, revision=3, decision=ReviewDecision.REJECTED)
    await h.send(rejected)
    await h.processed(late.event_id)
    await h.processed(rejected.event_id)
    article = (await h.get(f"/v1/articles/{slug}")).json()
    assert (article["title"], article["revision"]) == ("Bản thứ hai, đã biên tập", 2)

    events = await h.published_events(aid)
    assert [
        (e.data.revision, e.data.article.title if e.data.article else None) for e in events
    ] == [
        (2, "Bản thứ hai"),
        (2, "Bản thứ hai, đã biên tập"),
    ]
    assert events[0].data.published_at == events[1].data.published_at
    assert events[1].data.updated_at >= events[0].data.updated_at


async def test_retraction_removes_the_article_everywhere(h: Harness) -> None:
    aid = new_id()
    title = f"Bài sẽ bị gỡ {aid[:6]}"
    await h.send(reviewed(aid, revision=1, title=title, section="ct-xay-dung-dang"))
    slug = make_slug(title, aid)
    url = f"{h.settings.base_url}/bai-viet/{slug}"
    await wait_article(h, slug, lambda a: True)
    assert url in await news_urls(h)

    retract = reviewed(aid, revision=2, decision=ReviewDecision.RETRACTED)
    await h.send(retract)

    async def gone() -> bool:
        return (await h.get(f"/v1/articles/{slug}")).status_code == 410

    await wait_for(gone, what="410")
    resp = await h.get(f"/v1/articles/{slug}")
    assert resp.json()["slug"] == slug
    assert "retracted" in resp.json()["detail"]
    assert (await h.get(f"/bai-viet/{slug}")).status_code == 410

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [a["article_id"] for a in items]

    assert aid not in ids(await walk(h, "/v1/sections/ct-xay-dung-dang/articles"))
    assert aid not in ids(await walk(h, f"/v1/subsites/{SUBSITE}/articles"))
    home = (await h.get("/v1/home")).json()
    assert aid not in [a["article_id"] for b in home["blocks"] for a in b["articles"]]
    assert url not in rss_links((await h.get("/rss/sections/ct-xay-dung-dang.xml")).content)
    assert url not in rss_links((await h.get(f"/rss/subsites/{SUBSITE}.xml")).content)
    assert url not in await sitemap_urls(h)
    assert url not in await news_urls(h)

    # A late approval of the retracted revision does not bring it back.
    late = reviewed(aid, revision=2, title=title, section="ct-xay-dung-dang")
    await h.send(late)
    await h.processed(late.event_id)
    assert (await h.get(f"/v1/articles/{slug}")).status_code == 410

    events = await h.published_events(aid)
    assert [e.data.state for e in events] == ["published", "retracted"]
    assert events[1].data.slug == slug
    assert events[1].data.revision == 2
    assert events[1].data.article is None


async def test_the_same_event_twice_changes_nothing(h: Harness) -> None:
    aid = new_id()
    first = reviewed(aid, revision=1, title="Bản gốc")
    await h.send(first)
    slug = make_slug("Bản gốc", aid)
    await wait_article(h, slug, lambda a: True)
    await h.send(reviewed(aid, revision=1, title="Bản biên tập"))
    await wait_article(h, slug, lambda a: a["title"] == "Bản biên tập")

    await h.send(first)  # redelivered: must not bring "Bản gốc" back
    marker = reviewed(aid, revision=1, decision=ReviewDecision.REJECTED)
    await h.send(marker)  # same key, so processed after the duplicate
    await h.processed(marker.event_id)
    assert (await h.get(f"/v1/articles/{slug}")).json()["title"] == "Bản biên tập"
    assert len(await h.published_events(aid)) == 2


async def test_an_approval_without_an_article_is_dead_lettered(h: Harness) -> None:
    aid = new_id()
    bad = reviewed(aid, revision=1, with_article=False)
    await h.send(bad)
    consumer = AIOKafkaConsumer(
        ARTICLE_REVIEWED.dead_letter_topic,
        **h.kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def find() -> DeadLetterEvent | None:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    dead = decode(record.value, DeadLetterEvent)
                    assert isinstance(dead, DeadLetterEvent)
                    # Compared as bytes: other suites' dead letters on a shared stack (the
                    # fuzz's) hold originals that are not UTF-8.
                    if dead.data.consumer_group == "publishing" and str(bad.event_id).encode() in (
                        base64.b64decode(dead.data.original_value_b64)
                    ):
                        return dead
            return None

        dead = await wait_for(find, what="dead letter")
    finally:
        await consumer.stop()
    assert "carries no article" in dead.data.reason


# --- HTTP caching and pagination -----------------------------------------------------------------


async def test_conditional_requests_answer_304(h: Harness) -> None:
    aid = new_id()
    await h.send(reviewed(aid, revision=1, title="Bài để thử bộ nhớ đệm"))
    slug = make_slug("Bài để thử bộ nhớ đệm", aid)
    await wait_article(h, slug, lambda a: True)

    first = await h.get(f"/v1/articles/{slug}")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert first.headers["cache-control"].startswith("public, max-age=300")
    assert "last-modified" in first.headers
    again = await h.get(f"/v1/articles/{slug}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    since = await h.get(
        f"/v1/articles/{slug}", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert since.status_code == 304

    for path in (
        "/v1/site",
        "/v1/home",
        f"/v1/subsites/{SUBSITE}/articles",
        "/v1/sections/ct-tin-tuc-hoat-dong/articles",
        f"/rss/subsites/{SUBSITE}.xml",
        "/sitemap.xml",
        "/sitemaps/articles-1.xml",
        "/sitemaps/news.xml",
    ):
        resp = await h.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["cache-control"].startswith("public, max-age="), path
        cond = await h.get(path, headers={"If-None-Match": resp.headers["etag"]})
        assert cond.status_code == 304, path

    # A change gives a new representation: the old validators no longer match.
    lists_etag = (await h.get(f"/v1/subsites/{SUBSITE}/articles")).headers["etag"]
    await h.send(reviewed(aid, revision=2, title="Bài để thử bộ nhớ đệm, bản 2"))
    await wait_article(h, slug, lambda a: a["revision"] == 2)
    changed = await h.get(f"/v1/articles/{slug}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    listed = await h.get(f"/v1/subsites/{SUBSITE}/articles", headers={"If-None-Match": lists_etag})
    assert listed.status_code == 200


async def test_pagination_walks_every_item_once_newest_first(h: Harness) -> None:
    base = datetime.now(UTC) - timedelta(minutes=30)
    ids = [new_id(PAGED) for _ in range(7)]
    # Two articles share a publication time: the article id breaks the tie.
    times = [base + timedelta(minutes=i) for i in range(6)] + [base + timedelta(minutes=2)]
    events = [
        reviewed(aid, revision=1, source=PAGED, reviewed_at=t, title=f"Trang {i}")
        for i, (aid, t) in enumerate(zip(ids, times, strict=True))
    ]
    for event in events:
        await h.send(event)
    for event in events:
        await h.processed(event.event_id)

    path = f"/v1/subsites/{PAGED}/articles"
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await h.get(path, params=params)).json()
        pages.append([a["article_id"] for a in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    walked = [aid for p in pages for aid in p]
    expected = [aid for _, aid in sorted(zip(times, ids, strict=True), reverse=True)]
    assert walked == expected

    first = (await h.get(path, params={"limit": 3})).json()
    token = first["next_cursor"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    resp = await h.get(path, params={"cursor": tampered})
    assert resp.status_code == 400
    assert resp.json()["detail"].startswith("cursor:")
    other_list = await h.get(f"/v1/subsites/{SUBSITE}/articles", params={"cursor": token})
    assert other_list.status_code == 400
    assert (await h.get(path, params={"limit": 0})).status_code == 422
    capped = (await h.get(path, params={"limit": 100_000})).json()
    assert capped["limit"] == h.settings.page_size_max
    assert len(capped["items"]) == 7


# --- the server-side page cache ----------------------------------------------------------------


async def test_a_cached_page_shows_an_article_as_soon_as_it_is_published(h: Harness) -> None:
    home = await h.get("/v1/home")
    lst = await h.get(f"/v1/subsites/{SUBSITE}/articles")
    again = await h.get(f"/v1/subsites/{SUBSITE}/articles")  # served from the cache
    assert again.content == lst.content and again.headers["etag"] == lst.headers["etag"]
    rss = await h.get(f"/rss/subsites/{SUBSITE}.xml")

    aid = new_id()
    title = f"Tin mới nhất trên trang chủ {aid[:6]}"
    event = reviewed(aid, revision=1, title=title, decision=ReviewDecision.AUTO_PUBLISHED)
    await h.send(event)
    await h.processed(event.event_id)

    # The very next read: no waiting for an expiry.
    after = await h.get(f"/v1/subsites/{SUBSITE}/articles")
    assert after.json()["items"][0]["article_id"] == aid
    assert after.headers["etag"] != lst.headers["etag"]
    new_home = (await h.get("/v1/home")).json()
    block = next(b for b in new_home["blocks"] if b["code"] == "chuyen-trang")
    assert aid in [a["article_id"] for a in block["articles"]]
    assert new_home != home.json()
    slug = make_slug(title, aid)
    assert f"/bai-viet/{slug}" in (await h.get(f"/rss/subsites/{SUBSITE}.xml")).text
    assert rss.headers["etag"] != (await h.get(f"/rss/subsites/{SUBSITE}.xml")).headers["etag"]
    # A client holding the old list gets the new one, not a 304.
    revalidated = await h.get(
        f"/v1/subsites/{SUBSITE}/articles", headers={"If-None-Match": lst.headers["etag"]}
    )
    assert revalidated.status_code == 200

    article = await h.get(f"/v1/articles/{slug}")
    assert article.status_code == 200
    retract = reviewed(aid, revision=2, decision=ReviewDecision.RETRACTED)
    await h.send(retract)
    await h.processed(retract.event_id)
    assert (await h.get(f"/v1/articles/{slug}")).status_code == 410
    assert aid not in [
        a["article_id"] for a in (await h.get(f"/v1/subsites/{SUBSITE}/articles")).json()["items"]
    ]


async def test_a_change_by_another_instance_reaches_the_cached_pages(h: Harness) -> None:
    """Another writer (another replica, a rebuild) commits: its notification drops the pages."""
    site = await h.get("/v1/site")
    assert (await h.get("/v1/site")).content == site.content  # cached
    name = f"Chuyên trang đổi tên {RUN}"
    conn = await h.db()
    try:
        async with conn.transaction():
            await conn.execute("UPDATE site_subsites SET name = $1 WHERE code = $2", name, SUBSITE)
            await conn.execute("UPDATE changes SET changed_at = now() WHERE scope = 'site'")
    finally:
        await conn.close()

    async def renamed() -> bool:
        subsites = (await h.get("/v1/site")).json()["subsites"]
        return any(s["code"] == SUBSITE and s["name"] == name for s in subsites)

    # The notification arrives in milliseconds; the pages would otherwise live for an hour.
    await wait_for(renamed, what="the cached site structure to show the new name")
    resp = await h.client.put("/admin/v1/site", json=site_payload(SUBSITE, PAGED), headers=h.admin)
    assert resp.status_code == 200
    assert name not in (await h.get("/v1/site")).text  # the admin API's own change, at once
