"""The edge cache on the real stack: Varnish (started by the launcher) in front of the publishing
process, purged by the edge purger process from article.published.

Review decisions go to the real `article.reviewed` topic; readers go through the edge. Each run
has its own sub-site, so its lists hold only this run's articles.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from portal_contracts.articles import (
    ArticleReviewed,
    ArticleReviewedEvent,
    NormalizedArticle,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_REVIEWED
from portal_launcher import stack as launcher
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.components.varnish import VarnishComponent
from portal_launcher.credentials import admin_token, edge_purge_token
from portal_launcher.seed import SEED_DIR, load_seed
from portal_launcher.services import PURGER, WEBSITE, service_port
from portal_launcher.settings import StackSettings
from portal_publishing.edge import Edge
from portal_publishing.surrogate import Purge

pytestmark = pytest.mark.stack

RUN = uuid.uuid4().hex[:8]
SUBSITE = f"test-edge-{RUN}"
SECTION = "ct-tin-tuc-hoat-dong"  # a standard section of every sub-site
OTHER_SECTION = "van-ban-moi"  # a list none of this module's articles are in
WAIT_S = 60.0
T = TypeVar("T")


async def wait_for(check: Callable[[], Awaitable[T | None]], *, what: str) -> T:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def reviewed(
    article_id: str, revision: int, title: str, *, retract: bool = False
) -> ArticleReviewedEvent:
    article = (
        None
        if retract
        else NormalizedArticle(
            title=title,
            summary="Tóm tắt bài viết về công tác xây dựng Đảng.",
            body_html="<p>Nội dung bài viết.</p>",
            body_text="Nội dung bài viết.",
            section=SECTION,
        )
    )
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=SUBSITE,
            external_id=article_id[:12],
            revision=revision,
            decision=ReviewDecision.RETRACTED if retract else ReviewDecision.AUTO_PUBLISHED,
            reviewer="policy:trusted",
            reviewed_at=datetime.now(UTC),
            article=article,
        ),
    )


@dataclass
class Portal:
    settings: StackSettings
    producer: AIOKafkaProducer
    http: httpx.AsyncClient

    @property
    def origin(self) -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, 'publishing')}"

    async def send(self, event: ArticleReviewedEvent) -> None:
        await self.producer.send_and_wait(
            ARTICLE_REVIEWED.name, encode(event), key=event.subject.encode()
        )

    async def edge(self, path: str, **headers: str) -> httpx.Response:
        return await self.http.get(f"{self.settings.edge_url}{path}", headers=headers)

    async def from_origin(self, path: str) -> httpx.Response:
        # Each check as a reader of its own (the stack trusts loopback's X-Forwarded-For).
        reader = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
        return await self.http.get(f"{self.origin}{path}", headers={"X-Forwarded-For": reader})

    async def published(self, title: str) -> dict[str, Any]:
        """Wait until publishing lists an article of this run with ``title``; its summary."""

        async def listed() -> dict[str, Any] | None:
            resp = await self.from_origin(f"/v1/subsites/{SUBSITE}/articles")
            found = [a for a in resp.json()["items"] if a["title"] == title]
            return found[0] if found else None

        return await wait_for(listed, what=f"{title!r} published")

    async def edge_shows(self, path: str, wanted: Callable[[httpx.Response], bool]) -> None:
        async def check() -> bool:
            return wanted(await self.edge(path))

        await wait_for(check, what=f"the edge to show the change at {path}")

    async def edge_reaches_origin(self) -> None:
        """Until the edge's health probes see publishing again (after a restart)."""

        async def reached() -> bool:
            resp = await self.edge(f"/v1/sections/probe-{uuid.uuid4().hex}/articles")
            return resp.status_code == 404

        await wait_for(reached, what="the edge to see publishing up")

    async def edge_reaches_website(self) -> None:
        """Until the edge's health probes see the website (it renders /bai-viet/ pages)."""

        async def reached() -> bool:
            resp = await self.edge(f"/bai-viet/probe-{uuid.uuid4().hex}")
            return resp.status_code == 404

        await wait_for(reached, what="the edge to see the website up")

    async def cached_at_edge(self, path: str) -> httpx.Response:
        """Until a second request is answered from the edge's copy (a purge of an earlier event
        that the purger is still catching up with may drop the first copy)."""

        async def hit() -> httpx.Response | None:
            await self.edge(path)
            again = await self.edge(path)
            return again if again.headers["x-cache"] == "HIT" else None

        return await wait_for(hit, what=f"the edge to keep a copy of {path}")


def titles(resp: httpx.Response) -> list[str]:
    return [a["title"] for a in resp.json()["items"]]


@pytest.fixture(scope="module")
async def portal(stack_settings: StackSettings) -> AsyncIterator[Portal]:
    assert VarnishComponent(stack_settings).is_running(), "the stack runs no edge"
    # Publishing, its purger, and the website with the APIs it reads (it is ready only when
    # they answer): the edge sends article pages to the website.
    wanted = ("publishing", PURGER, "search", "engagement", WEBSITE)
    started = [p for p in launcher.services(stack_settings, wanted) if not p.is_running()]
    if started:
        launcher.services_up(stack_settings, tuple(p.service for p in started), say=lambda _: None)
    producer = AIOKafkaProducer(**admin_client_options(stack_settings), acks="all")
    await producer.start()
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            site, sources = load_seed(SEED_DIR)
            subsites = [
                {"code": s["code"], "name": s["name"], "kind": s["kind"]}
                for s in sources["sources"]
            ]
            subsites.append({"code": SUBSITE, "name": f"Chuyên trang {RUN}", "kind": "province"})
            token = admin_token(stack_settings, "publishing")
            portal = Portal(stack_settings, producer, http)
            # The edge's health probes mark a just-started origin healthy a probe or two later.
            await portal.edge_reaches_origin()
            await portal.edge_reaches_website()
            resp = await http.put(
                f"{portal.origin}/admin/v1/site",
                json={
                    "blocks": site["blocks"],
                    "standard_sections": sources["standard_sections"],
                    "subsites": subsites,
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 200, resp.text
            yield portal
    finally:
        await producer.stop()
        for proc in started:
            proc.stop()


async def test_an_edit_purges_exactly_the_pages_that_show_the_article(portal: Portal) -> None:
    aid = article_id_for(SUBSITE, uuid.uuid4().hex)
    await portal.send(reviewed(aid, 1, f"Tin đầu tiên {RUN}"))
    slug = (await portal.published(f"Tin đầu tiên {RUN}"))["slug"]
    article, listing = f"/v1/articles/{slug}", f"/v1/subsites/{SUBSITE}/articles"
    elsewhere = f"/v1/sections/{OTHER_SECTION}/articles"
    for path in (article, listing, elsewhere):
        await portal.cached_at_edge(path)
    assert (await portal.edge(article)).json()["title"] == f"Tin đầu tiên {RUN}"

    await portal.send(reviewed(aid, 2, f"Tin đã sửa {RUN}"))

    await portal.edge_shows(article, lambda r: r.json()["title"] == f"Tin đã sửa {RUN}")
    await portal.edge_shows(listing, lambda r: titles(r) == [f"Tin đã sửa {RUN}"])
    # A list that does not show the article kept its cached copy.
    untouched = await portal.edge(elsewhere)
    assert untouched.headers["x-cache"] == "HIT"
    assert int(untouched.headers["age"]) >= 0


async def test_a_retraction_never_stays_visible_even_with_publishing_down(
    portal: Portal,
) -> None:
    aid = article_id_for(SUBSITE, uuid.uuid4().hex)
    title = f"Tin sẽ bị gỡ {RUN}"
    await portal.send(reviewed(aid, 1, title))
    slug = (await portal.published(title))["slug"]
    article, page = f"/v1/articles/{slug}", f"/bai-viet/{slug}"
    listing = f"/v1/subsites/{SUBSITE}/articles"
    # The publication reaches the edge's copy of the list as soon as the purger purged it.
    await portal.edge_shows(listing, lambda r: title in titles(r))
    for path in (article, page, listing):
        resp = await portal.cached_at_edge(path)
        assert resp.status_code == 200

    await portal.send(reviewed(aid, 2, title, retract=True))

    await portal.edge_shows(article, lambda r: r.status_code == 410)
    await portal.edge_shows(page, lambda r: r.status_code == 410)
    await portal.edge_shows(listing, lambda r: title not in titles(r))
    # Hard purged: with publishing down, stale copies (stale-if-error) never bring it back.
    launcher.stop_one(portal.settings, "publishing")
    try:
        for _ in range(5):
            assert (await portal.edge(article)).status_code != 200
            assert (await portal.edge(page)).status_code != 200
            shown = await portal.edge(listing)
            assert shown.status_code != 200 or title not in titles(shown)
            await asyncio.sleep(0.3)
    finally:
        launcher.start_one(portal.settings, "publishing", say=lambda _: None)
        await portal.edge_reaches_origin()


async def test_readers_with_a_cookie_or_credentials_never_share_the_cache(portal: Portal) -> None:
    path = f"/v1/sections/{OTHER_SECTION}/articles"
    shared = await portal.cached_at_edge(path)  # the positive first: a shared copy exists
    assert shared.headers["cache-control"].startswith("public")
    for headers in ({"Cookie": "phien=abc"}, {"Authorization": "Bearer abc"}):
        for _ in range(2):
            assert (await portal.edge(path, **headers)).headers["x-cache"] == "PASS"
    # Answers that are not public (an unknown section: 404 without Cache-Control) are not kept.
    for _ in range(2):
        missing = await portal.edge(f"/v1/sections/khong-co-{RUN}/articles")
        assert missing.status_code == 404 and missing.headers["x-cache"] != "HIT"


async def test_the_purger_catches_up_after_a_restart(portal: Portal) -> None:
    aid = article_id_for(SUBSITE, uuid.uuid4().hex)
    await portal.send(reviewed(aid, 1, f"Tin trước {RUN}"))
    slug = (await portal.published(f"Tin trước {RUN}"))["slug"]
    article = f"/v1/articles/{slug}"
    await portal.cached_at_edge(article)

    launcher.stop_one(portal.settings, PURGER)
    try:
        await portal.send(reviewed(aid, 2, f"Tin sau {RUN}"))

        async def origin_has_it() -> bool:
            resp = await portal.from_origin(article)
            return resp.json()["title"] == f"Tin sau {RUN}"

        await wait_for(origin_has_it, what="publishing to serve the edit")
        # Without the purger the edge keeps its copy (until s-maxage)...
        stale = await portal.edge(article)
        assert stale.headers["x-cache"] == "HIT" and stale.json()["title"] == f"Tin trước {RUN}"
    finally:
        launcher.start_one(portal.settings, PURGER, say=lambda _: None)
    # ...and the purger, back, takes the event from its committed offset.
    await portal.edge_shows(article, lambda r: r.json()["title"] == f"Tin sau {RUN}")


async def test_a_large_batch_s_purge_is_taken_by_the_edge(portal: Portal) -> None:
    # A batch of several hundred publications names more keys than one request header holds
    # (Varnish answered such a purge with a 400, and the purger retried it for ever).
    keys = tuple(f"article:{SUBSITE}:{n:05d}-{uuid.uuid4().hex}" for n in range(800))
    edge = Edge([portal.settings.edge_url], edge_purge_token(portal.settings), portal.http)
    assert await edge.purge(Purge(soft=keys, hard=keys[:300])) == 0  # taken, nothing cached
