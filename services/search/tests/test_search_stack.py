"""The search service on the real stack: Kafka in, OpenSearch behind, HTTP out.

One app runs in-process for the module (its consumer joins group "search"); tests publish
``article.published`` events to the real broker and read the public and admin APIs. Each test
uses its own source codes and words, so counts are exact despite the shared stack.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from opensearchpy import AsyncOpenSearch

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    NormalizedArticle,
    PublishedState,
)
from portal_contracts.codec import decode, encode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_runtime.testing import drive, record_for
from portal_search import api
from portal_search.app import create_app, rebuild_if_outdated
from portal_search.deps import ApiDeps
from portal_search.domain import document_for
from portal_search.handlers import published_subscription
from portal_search.index import ArticleIndex
from portal_search.rebuild import Rebuilder
from portal_search.resultcache import ResultCache
from portal_search.settings import Settings
from portal_text import slugify

pytestmark = pytest.mark.stack

T = TypeVar("T")
WAIT_S = 60.0


@dataclass
class Stack:
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    kafka: dict[str, Any]  # the stack's operator
    opensearch_url: str
    admin_token: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def publish(self, event: ArticlePublishedEvent) -> RecordMetadata:
        meta: RecordMetadata = await self.producer.send_and_wait(
            ARTICLE_PUBLISHED.name, encode(event), key=event.subject.encode()
        )
        return meta

    async def search(self, **params: Any) -> dict[str, Any]:
        resp = await self.http.get("/v1/search", params=params)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def ids(self, **params: Any) -> list[str]:
        return [h["article_id"] for h in (await self.search(**params))["hits"]]

    async def consumed(self, meta: RecordMetadata) -> None:
        """Wait until group "search" has committed past ``meta``'s message (it was handled)."""
        admin = AIOKafkaAdminClient(**self.kafka)
        await admin.start()
        try:

            async def past() -> bool:
                offsets = await admin.list_consumer_group_offsets("search")
                committed = offsets.get(TopicPartition(meta.topic, meta.partition))
                return committed is not None and committed.offset > meta.offset

            await wait_for(past, what=f"offset {meta.offset} consumed")
        finally:
            await admin.close()


async def wait_for(probe: Callable[[], Awaitable[T]], *, what: str, timeout_s: float = WAIT_S) -> T:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def tag() -> str:
    return uuid.uuid4().hex[:10]


def event(
    article_id: str,
    *,
    source: str,
    title: str,
    revision: int = 1,
    state: PublishedState = PublishedState.PUBLISHED,
    section: str = "tin-hoat-dong",
    body: str = "Nội dung bài viết.",
    published_at: datetime | None = None,
) -> ArticlePublishedEvent:
    when = published_at or datetime.now(UTC)
    slug = f"{slugify(title)}-{article_id[:8]}"
    article = (
        NormalizedArticle(
            title=title,
            summary=f"Tóm tắt: {title}",
            body_html=f"<p>{body}</p>",
            body_text=body,
            section=section,
        )
        if state is PublishedState.PUBLISHED
        else None
    )
    return ArticlePublishedEvent(
        producer="search-test",
        subject=article_id,
        data=ArticlePublished(
            article_id=article_id,
            source=source,
            revision=revision,
            state=state,
            slug=slug,
            url_path=f"/bai-viet/{slug}",
            published_at=when,
            updated_at=when,
            article=article,
        ),
    )


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="module")
async def stack(stack_settings: StackSettings) -> AsyncIterator[Stack]:
    # env_for is per test; one app for the module needs the same environment at module scope.
    env = service_environment(stack_settings, "search")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        app = create_app()
        producer = AIOKafkaProducer(
            **admin_client_options(stack_settings), acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            async with (
                LifespanManager(app, startup_timeout=180, shutdown_timeout=60),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://search", timeout=60
                ) as http,
            ):
                yield Stack(
                    http=http,
                    producer=producer,
                    kafka=admin_client_options(stack_settings),
                    opensearch_url=stack_settings.opensearch_url,
                    admin_token=env["ADMIN_TOKEN"],
                )
        finally:
            await producer.stop()


async def test_published_article_is_found_with_or_without_diacritics(stack: Stack) -> None:
    t, source, aid = tag(), f"ts-{tag()}", new_id()
    title = f"Đảng Cộng sản Việt Nam lãnh đạo sự nghiệp hoà bình {t}"
    await stack.publish(
        event(aid, source=source, title=title, body=f"Thuỷ lợi <b>&</b> đê điều {t}")
    )
    await wait_for(lambda: stack.ids(q=t), what="indexed")

    for q in (
        f"dang cong san {t}",
        f"Đảng Cộng sản {t}",
        f"DANG CONG SAN {t}",
        f"hòa bình {t}",  # the other tone placement
        f"thủy lợi {t}",
    ):
        # Best match first; with 4+ words one may be missing, so others can follow.
        assert (await stack.ids(q=q))[:1] == [aid], q
        assert await stack.ids(q=q, source=source) == [aid], q

    result = await stack.search(q=f"dang cong san {t}", source=source)
    (hit,) = result["hits"]
    assert result["total"] == 1
    assert hit["title"] == title.replace("hoà", "hòa")
    assert hit["source"] == source
    assert hit["section"] == "tin-hoat-dong"
    assert hit["url_path"] == f"/bai-viet/{hit['slug']}"
    assert hit["score"] > 0
    assert "<mark>Đảng</mark> <mark>Cộng</mark> <mark>sản</mark>" in hit["highlight"]["title"][0]
    # Body text with markup-like characters comes back escaped around the marks.
    body_hl = (await stack.search(q=f"thuy loi {t}"))["hits"][0]["highlight"]["body"][0]
    assert "<mark>Thủy</mark> <mark>lợi</mark> &lt;b&gt;&amp;&lt;/b&gt;" in body_hl


async def test_exact_diacritics_rank_higher(stack: Stack) -> None:
    source = f"tr-{tag()}"
    party, currently = new_id(), new_id()
    # Same length and words except Đảng (the Party) / đang (currently): folded, they are equal.
    await stack.publish(event(party, source=source, title="Đảng họp bàn kế hoạch mới"))
    await stack.publish(event(currently, source=source, title="Đang họp bàn kế hoạch mới"))
    await wait_for(lambda: _count(stack, 2, source=source, q="dang hop"), what="both indexed")

    assert set(await stack.ids(q="dang hop", source=source)) == {party, currently}
    assert await stack.ids(q="Đảng họp", source=source) == [party, currently]
    assert await stack.ids(q="đang họp", source=source) == [currently, party]
    scores = [h["score"] for h in (await stack.search(q="Đảng", source=source))["hits"]]
    assert scores[0] > scores[1]


async def test_filters_facets_and_sort(stack: Stack) -> None:
    t = tag()
    s1, s2 = f"fa-{tag()}", f"fb-{tag()}"
    day = datetime(2024, 3, 20, 3, 0, tzinfo=UTC)
    docs = {
        "a": (s1, "xay-dung-dang", day),
        "b": (s1, "tin-hoat-dong", day + timedelta(days=1)),
        "c": (s2, "xay-dung-dang", day + timedelta(days=2)),
    }
    ids = {name: new_id() for name in docs}
    for name, (source, section, when) in docs.items():
        await stack.publish(
            event(
                ids[name],
                source=source,
                section=section,
                title=f"Bài {name} về chủ đề {t}",
                published_at=when,
            )
        )
    await wait_for(lambda: _count(stack, 3, q=t, source=[s1, s2]), what="three indexed")

    everything = await stack.search(q=t, source=[s1, s2])
    assert _facet(everything, "section") == {"xay-dung-dang": 2, "tin-hoat-dong": 1}
    assert _facet(everything, "source") == {s1: 2, s2: 1}

    by_section = await stack.search(q=t, source=[s1, s2], section="xay-dung-dang")
    assert {h["article_id"] for h in by_section["hits"]} == {ids["a"], ids["c"]}
    assert by_section["total"] == 2
    # The section facet still shows every section; the source facet follows the section.
    assert _facet(by_section, "section") == {"xay-dung-dang": 2, "tin-hoat-dong": 1}
    assert _facet(by_section, "source") == {s1: 1, s2: 1}

    by_source = await stack.ids(q=t, source=s2)
    assert by_source == [ids["c"]]

    # Dates: a bare 'to' date includes that whole (Vietnam) day.
    in_range = await stack.ids(q=t, source=[s1, s2], **{"from": "2024-03-21", "to": "2024-03-21"})
    assert in_range == [ids["b"]]
    newest_first = await stack.ids(q=t, source=[s1, s2], sort="date")
    assert newest_first == [ids["c"], ids["b"], ids["a"]]
    # Browsing without a query, paged.
    page2 = await stack.search(source=[s1, s2], size=2, page=2)
    assert page2["total"] == 3 and [h["article_id"] for h in page2["hits"]] == [ids["a"]]
    assert page2["hits"][0]["highlight"] == {"title": [], "body": []}


async def _count(stack: Stack, n: int, **params: Any) -> bool:
    total: int = (await stack.search(**params))["total"]
    return total == n


def _facet(result: dict[str, Any], name: str) -> dict[str, int]:
    return {b["key"]: b["count"] for b in result["facets"][name]}


async def test_retraction_removes_and_a_newer_republish_restores(stack: Stack) -> None:
    t, source, aid = tag(), f"rt-{tag()}", new_id()
    await stack.publish(event(aid, source=source, title=f"Bài sẽ bị gỡ {t}", revision=1))
    await wait_for(lambda: stack.ids(q=t), what="indexed")

    await stack.publish(
        event(aid, source=source, title="-", revision=2, state=PublishedState.RETRACTED)
    )
    await wait_for(lambda: _absent(stack, aid, q=t), what="removed")
    assert (await stack.search(q=t))["total"] == 0

    # The retracted revision 1 arriving again (late) must not bring it back.
    late = await stack.publish(event(aid, source=source, title=f"Bài sẽ bị gỡ {t}", revision=1))
    await stack.consumed(late)
    await asyncio.sleep(1.2)  # one refresh interval
    assert aid not in await stack.ids(q=t)

    await stack.publish(event(aid, source=source, title=f"Bài đăng lại {t}", revision=3))
    await wait_for(lambda: stack.ids(q=f"dang lai {t}"), what="republished")
    assert [h["title"] for h in (await stack.search(q=t))["hits"]] == [f"Bài đăng lại {t}"]


async def test_related_articles_share_their_rare_words_never_the_article_itself(
    stack: Stack,
) -> None:
    t, source = tag(), f"rl-{tag()}"
    base, near, far = new_id(), new_id(), new_id()
    # Earlier runs on the same stack left their own base article: it must share fewer and less
    # rare words with this base than this run's neighbour does (words of this run only).
    topic = f"thủy điện {t} lũ quét {t}b hạ du {t}c"
    await stack.publish(event(base, source=source, title=f"Vận hành {t}d {topic}", body=topic))
    await stack.publish(event(near, source=source, title=f"Cảnh báo {topic}", body=topic))
    await stack.publish(
        event(far, source=source, title=f"Hội nghị văn hóa {tag()}", body="Lễ hội mùa xuân.")
    )
    await wait_for(lambda: _count(stack, 3, source=source), what="three indexed")

    async def related(aid: str) -> list[str]:
        resp = await stack.http.get(f"/v1/articles/{aid}/related", params={"size": 5})
        assert resp.status_code == 200, resp.text
        assert resp.json()["article_id"] == aid
        return [i["article_id"] for i in resp.json()["items"]]

    found = await related(base)
    assert found[:1] == [near]
    assert base not in found
    assert found.index(near) < (found.index(far) if far in found else len(found))
    item = (await stack.http.get(f"/v1/articles/{base}/related")).json()["items"][0]
    assert item["title"] == f"Cảnh báo {topic}" and item["url_path"].startswith("/bai-viet/")

    # A retracted neighbour is never offered; an unknown article has none.
    await stack.publish(
        event(near, source=source, title="-", revision=2, state=PublishedState.RETRACTED)
    )
    await wait_for(lambda: _absent(stack, near, q=t), what="neighbour retracted")
    assert near not in await related(base)
    assert await related(new_id()) == []
    bad = await stack.http.get("/v1/articles/a%2Fb/related")
    assert bad.status_code in (404, 422)


async def _absent(stack: Stack, aid: str, **params: Any) -> bool:
    return aid not in await stack.ids(**params)


async def test_an_older_revision_arriving_late_does_not_overwrite(stack: Stack) -> None:
    t, source, aid = tag(), f"ov-{tag()}", new_id()
    await stack.publish(event(aid, source=source, title=f"Bản sửa đổi {t}", revision=2))
    await wait_for(lambda: stack.ids(q=t), what="revision 2 indexed")

    late = await stack.publish(event(aid, source=source, title=f"Bản đầu tiên {t}", revision=1))
    await stack.consumed(late)
    await asyncio.sleep(1.2)
    assert [h["title"] for h in (await stack.search(q=t))["hits"]] == [f"Bản sửa đổi {t}"]
    assert await stack.ids(q=f"ban dau tien {t}") == []


async def test_malformed_message_is_dead_lettered_and_the_next_one_indexed(stack: Stack) -> None:
    t, source, aid = tag(), f"dl-{tag()}", new_id()
    key = aid.encode()
    # Same key, so the same partition: the valid event is behind the bad one.
    bad = await stack.producer.send_and_wait(
        ARTICLE_PUBLISHED.name, b'{"type": "article.published", "data": ', key=key
    )
    await stack.publish(event(aid, source=source, title=f"Sau thư hỏng {t}"))
    await wait_for(lambda: stack.ids(q=t), what="next valid event indexed")

    consumer = AIOKafkaConsumer(
        ARTICLE_PUBLISHED.dead_letter_topic,
        **stack.kafka,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        letter = None
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while letter is None and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    dead = decode(record.value, expected=DeadLetterEvent)
                    assert isinstance(dead, DeadLetterEvent)
                    # Other consumers of article.published (ingest's status view) dead-letter
                    # the same bytes into the same topic: take search's own letter.
                    mine = dead.data.original_key_b64 == base64.b64encode(key).decode()
                    if mine and dead.data.consumer_group == "search":
                        letter = dead
    finally:
        await consumer.stop()
    assert letter is not None, "no dead letter from search for the malformed message"
    assert letter.data.original_offset == bad.offset
    assert "JSON" in letter.data.reason
    assert base64.b64decode(letter.data.original_value_b64).startswith(b'{"type"')


async def test_reindex_keeps_everything_searchable_and_switches_the_alias(stack: Stack) -> None:
    t, source = tag(), f"ri-{tag()}"
    kept = [new_id() for _ in range(5)]
    for i, aid in enumerate(kept):
        await stack.publish(event(aid, source=source, title=f"Bài số {i} {t}"))
    gone = new_id()
    await stack.publish(event(gone, source=source, title=f"Bài bị gỡ {t}", revision=1))
    await stack.publish(
        event(gone, source=source, title="-", revision=2, state=PublishedState.RETRACTED)
    )
    await wait_for(lambda: _count(stack, 5, q=t, size=50), what="five indexed")

    assert (await stack.http.post("/admin/v1/reindex")).status_code == 401
    before = (await stack.http.get("/admin/v1/index", headers=stack.admin)).json()
    assert before["index"].startswith("articles-v") and before["building"] is None

    # Searches and live events keep flowing while the index is rebuilt.
    totals: list[int] = []
    during: list[str] = []
    stop = asyncio.Event()

    async def keep_searching() -> None:
        while not stop.is_set():
            resp = await stack.http.get("/v1/search", params={"q": t, "source": source})
            assert resp.status_code == 200, resp.text
            totals.append(resp.json()["total"])
            await asyncio.sleep(0.02)

    async def keep_publishing() -> None:
        n = 0
        while not stop.is_set() and n < 30:
            aid = new_id()
            await stack.publish(event(aid, source=source, title=f"Tin trong lúc dựng {n} {t}"))
            during.append(aid)
            n += 1
            await asyncio.sleep(0.1)

    searcher = asyncio.create_task(keep_searching())
    publisher = asyncio.create_task(keep_publishing())
    try:
        resp = await stack.http.post("/admin/v1/reindex", headers=stack.admin)
    finally:
        stop.set()
        await asyncio.gather(searcher, publisher)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["index"] != before["index"]
    assert result["previous_index"] == before["index"]
    assert result["documents"] >= 5 and result["took_ms"] >= 0

    after = (await stack.http.get("/admin/v1/index", headers=stack.admin)).json()
    assert after["index"] == result["index"]
    assert after["building"] is None
    async with AsyncOpenSearch(hosts=[stack.opensearch_url]) as client:
        assert not await client.indices.exists(index=before["index"])

    assert totals and min(totals) >= 5, "a search during the rebuild lost documents"
    expected = set(kept) | set(during)
    await wait_for(
        lambda: _ids_are(stack, expected, q=t, source=source, size=50),
        what="every document, including those published during the rebuild",
    )
    assert len(expected) <= 50
    assert gone not in await stack.ids(q=t, source=source, size=50)


async def _ids_are(stack: Stack, expected: set[str], **params: Any) -> bool:
    found = set(await stack.ids(**params))
    if found != expected:
        print(f"missing {len(expected - found)}, unexpected {len(found - expected)}")
    return found == expected


async def test_live_write_during_a_build_lands_in_both_indices(
    stack_settings: StackSettings,
) -> None:
    """The dual write, on an alias of its own: before and after the swap nothing is lost."""
    alias = f"zz_dual_{tag()}"
    async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url]) as client:
        index = ArticleIndex(client, alias=alias)
        try:
            old = await index.ensure()
            new = await index.start_build(stale_after_s=3600)
            op = document_for(event(new_id(), source="dual-test", title="Ghi kép", revision=2).data)
            assert await index.write(op) == "written"
            await index.finish_build(new)
            await index.client.indices.refresh(index=old)
            assert await index.count(old) == 1 and await index.count(new) == 1
            await index.swap(new, old)
            assert await index.current_index() == new
            assert await index.building_index() is None
            # After the swap a write (and an older revision) goes to the new index only.
            second = document_for(event(new_id(), source="dual-test", title="Sau khi đổi").data)
            assert await index.write(second) == "written"
            again = document_for(
                event(op.article_id, source="dual-test", title="Ghi kép", revision=2).data
            )
            assert await index.write(again) == "written"  # same revision: idempotent rewrite
            older = document_for(
                event(op.article_id, source="dual-test", title="Cũ", revision=1).data
            )
            assert await index.write(older) == "stale"
            assert await index.count(old, published_only=False) == 1  # old index untouched
        finally:
            await client.indices.delete(index=f"{alias}-v*")


async def test_the_refresh_interval_reaches_new_old_and_rebuilt_indices(
    stack_settings: StackSettings,
) -> None:
    """How soon an article is searchable is a setting: an index made under another value (a
    start with the old setting) takes the new one at start-up, and so does a rebuilt index."""
    alias = f"zz_refresh_{tag()}"

    async def interval(client: AsyncOpenSearch, name: str) -> str | None:
        found = await client.indices.get_settings(index=name, name="index.refresh_interval")
        # An index with no such setting is left out of the answer.
        value = found.get(name, {}).get("settings", {}).get("index", {}).get("refresh_interval")
        return None if value is None else str(value)

    async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url]) as client:
        try:
            first = await ArticleIndex(client, alias=alias, refresh_interval="250ms").ensure()
            assert await interval(client, first) == "250ms"
            index = ArticleIndex(client, alias=alias, refresh_interval="2s")
            assert await index.ensure() == first
            assert await interval(client, first) == "2s"
            new = await index.start_build(stale_after_s=3600)
            assert await interval(client, new) == "-1"  # bulk loading: no refresh meanwhile
            await index.finish_build(new)
            assert await interval(client, new) == "2s"
            # Without a setting, OpenSearch's default applies (and no-one's value lingers).
            assert await ArticleIndex(client, alias=alias).ensure() == first
            assert await interval(client, first) is None
        finally:
            await client.indices.delete(index=f"{alias}-v*")


async def test_an_index_of_an_older_layout_is_rebuilt_at_start_up(
    stack_settings: StackSettings,
) -> None:
    """An index made by an older version (written and folded words in separate sub-fields, no
    layout in its mapping) is rebuilt when the service starts; a current one is left alone."""
    alias = f"zz_layout_{tag()}"
    async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url]) as client:
        try:
            index = ArticleIndex(client, alias=alias)
            older = index.definition()
            del older["mappings"]["_meta"]
            older["mappings"]["properties"]["title"] = {
                "type": "text",
                "analyzer": "vi_exact",
                "fields": {"folded": {"type": "text", "analyzer": "vi_folded"}},
            }
            old = index.new_index_name()
            await client.indices.create(index=old, body={**older, "aliases": {alias: {}}})
            assert await index.ensure() == old
            assert await index.outdated()

            rebuilds: list[str] = []

            async def rebuild() -> None:  # the rebuild's own steps (the replay is tested above)
                new = await index.start_build(stale_after_s=3600)
                await index.finish_build(new)
                await index.swap(new, await index.current_index())
                rebuilds.append(new)

            await rebuild_if_outdated(index, rebuild)
            assert len(rebuilds) == 1
            assert await index.current_index() == rebuilds[0]
            assert not await index.outdated()
            await rebuild_if_outdated(index, rebuild)
            assert len(rebuilds) == 1  # current layout: nothing to do
        finally:
            await client.indices.delete(index=f"{alias}-v*")


async def test_concurrent_startups_leave_one_index_behind_the_alias(
    stack_settings: StackSettings,
) -> None:
    alias = f"zz_race_{tag()}"
    async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url]) as client:
        try:
            instances = [ArticleIndex(client, alias=alias) for _ in range(3)]
            chosen = await asyncio.gather(*(i.ensure() for i in instances))
            assert len(set(chosen)) == 1
            indices = await client.indices.get(index=f"{alias}-v*")
            assert list(indices) == [chosen[0]]
            assert await instances[0].ensure() == chosen[0]  # idempotent
        finally:
            await client.indices.delete(index=f"{alias}-v*")


class _LookupBeforeTheCreateLanded(ArticleIndex):
    """An instance whose first look-up of the alias ran before a create that OpenSearch was
    still carrying out (its request had timed out here) made the alias."""

    looked = False

    async def _targets(self, alias: str) -> list[str]:
        if not self.looked:
            self.looked = True
            return []
        return await super()._targets(alias)


async def test_an_alias_made_during_start_up_is_taken_not_mistaken_for_an_index(
    stack_settings: StackSettings,
) -> None:
    alias = f"zz_late_{tag()}"
    async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url]) as client:
        try:
            made = await ArticleIndex(client, alias=alias).ensure()  # the create carried out
            assert await _LookupBeforeTheCreateLanded(client, alias=alias).ensure() == made
            assert list(await client.indices.get(index=f"{alias}-v*")) == [made]
        finally:
            await client.indices.delete(index=f"{alias}-v*")


async def test_a_reindex_asked_to_respond_async_is_a_job_to_poll(stack: Stack) -> None:
    """A big topic's rebuild outlasts a request: with ``Prefer: respond-async`` the answer is
    202 at once, with the job's status URL; polling it shows the result when done."""
    before = (await stack.http.get("/admin/v1/index", headers=stack.admin)).json()
    async_admin = {**stack.admin, "Prefer": "respond-async"}
    started = await stack.http.post("/admin/v1/reindex", headers=async_admin)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] == "running"
    assert started.headers["location"] == job["status_url"]
    again = await stack.http.post("/admin/v1/reindex", headers=async_admin)
    assert again.status_code == 409  # one at a time

    async def finished() -> bool:
        nonlocal job
        job = (await stack.http.get(job["status_url"], headers=stack.admin)).json()
        return bool(job["state"] != "running")

    await wait_for(finished, what="the reindex job done")
    assert job["state"] == "succeeded", job
    assert job["result"]["previous_index"] == before["index"]
    assert job["result"]["index"] != before["index"] and job["finished_at"]
    after = (await stack.http.get("/admin/v1/index", headers=stack.admin)).json()
    assert after["index"] == job["result"]["index"] and after["building"] is None

    unknown = await stack.http.get(f"/admin/v1/reindex/jobs/{'0' * 32}", headers=stack.admin)
    assert unknown.status_code == 404
    assert (await stack.http.get(job["status_url"])).status_code == 401


async def test_a_second_reindex_while_one_runs_is_refused(stack: Stack) -> None:
    first, second = await asyncio.gather(
        stack.http.post("/admin/v1/reindex", headers=stack.admin),
        stack.http.post("/admin/v1/reindex", headers=stack.admin),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    refused = first if first.status_code == 409 else second
    assert "already running" in refused.json()["detail"]
    info = (await stack.http.get("/admin/v1/index", headers=stack.admin)).json()
    assert info["building"] is None


async def test_a_cached_search_shows_what_this_instance_indexes(stack: Stack) -> None:
    """The answers' cache (hour-long here) is dropped by the instance's own index writes."""
    client = AsyncOpenSearch(hosts=[stack.opensearch_url])
    index = ArticleIndex(client)
    results = ResultCache(ttl_s=3600, max_entries=100)
    app = FastAPI()
    app.include_router(api.public)
    app.state.api = ApiDeps(index=index, results=results, rebuilder=Rebuilder(index, Settings()))
    consumer = published_subscription(index, max_body_chars=10_000, results=results)

    async def handle(published: ArticlePublishedEvent) -> None:
        await drive(consumer, [record_for(ARTICLE_PUBLISHED.name, published)])

    t, source, aid = tag(), f"rc-{tag()}", new_id()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://search"
        ) as http:

            async def found() -> list[str]:
                resp = await http.get("/v1/search", params={"q": t})
                assert resp.status_code == 200
                return [h["article_id"] for h in resp.json()["hits"]]

            assert await found() == []
            assert await found() == [] and len(results) == 1  # kept: the next one is cached

            await handle(event(aid, source=source, title=f"Bài trong bộ nhớ đệm {t}"))
            # The refresh comes within the cache's settling time (about a second after a write).
            await client.indices.refresh(index=index.alias)
            assert await wait_for(found, what="the new article in the cached search") == [aid]

            gone = event(aid, source=source, title="-", revision=2, state=PublishedState.RETRACTED)
            await handle(gone)
            await client.indices.refresh(index=index.alias)

            async def absent() -> bool:
                return await found() == []

            await wait_for(absent, what="the retracted article out of the cached search")
    finally:
        await client.close()
