"""The publishing consumer (article.reviewed -> the published store and article.published)
driven as the batch consumer drives it, without Kafka or a database: the repository is an
in-memory fake, the revision rules and the page cache are the real ones. The real broker and
database: test_publishing_stack.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

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
from portal_contracts.topics import ARTICLE_PUBLISHED, ARTICLE_REVIEWED
from portal_publishing import repository
from portal_publishing.domain import make_slug
from portal_publishing.handlers import reviewed_subscription
from portal_publishing.pagecache import PageCache
from portal_runtime.batch import Record
from portal_runtime.testing import Ledger, drive, record_for, records_for

SOURCE = "tp-ha-noi"
SECTION = "ct-tin-tuc-hoat-dong"
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Store:
    """The published store as the consumer sees it through ``repository``."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.touched: set[str] = set()
        self.slugs_of_others: set[str] = set()
        self.slug_lookups: list[set[str]] = []

    async def lock_articles(self, session: Any, article_ids: Sequence[str]) -> dict[str, Any]:
        return {
            a: SimpleNamespace(_mapping=dict(self.rows[a])) for a in article_ids if a in self.rows
        }

    async def upsert_articles(self, session: Any, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self.rows.setdefault(row["article_id"], {}).update(row)

    async def touch(self, session: Any, scopes: Iterable[str]) -> None:
        self.touched.update(scopes)

    async def slugs_held(self, session: Any, slugs: Iterable[str]) -> dict[str, str]:
        wanted = set(slugs)
        self.slug_lookups.append(wanted)
        held = {r["slug"]: a for a, r in self.rows.items() if r.get("slug") in wanted}
        return held | {s: "another-article" for s in wanted & self.slugs_of_others}


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    for name in ("lock_articles", "upsert_articles", "touch", "slugs_held"):
        monkeypatch.setattr(repository, name, getattr(fake, name))
    return fake


@pytest.fixture
def pages() -> PageCache:
    return PageCache(ttl_s=60, max_bytes=1_000_000)


def reviewed(
    external_id: str,
    revision: int = 1,
    decision: ReviewDecision = ReviewDecision.APPROVED,
    *,
    title: str = "Hội nghị Ban Chấp hành",
    article: bool = True,
) -> ArticleReviewedEvent:
    article_id = article_id_for(SOURCE, external_id)
    body = None
    if article and decision in (ReviewDecision.APPROVED, ReviewDecision.AUTO_PUBLISHED):
        body = NormalizedArticle(
            title=title,
            summary="Hội nghị lần thứ mười.",
            body_html=f"<p>Hội nghị, bản {revision}.</p>",
            body_text=f"Hội nghị, bản {revision}.",
            section=SECTION,
        )
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=SOURCE,
            external_id=external_id,
            revision=revision,
            decision=decision,
            reviewer="bt-vien",
            reviewed_at=NOW + timedelta(minutes=revision),
            article=body,
        ),
    )


async def run(pages: PageCache, records: list[Record], ledger: Ledger | None = None) -> Ledger:
    return await drive(reviewed_subscription(pages), records, ledger, session=object())


def published(ledger: Ledger) -> list[ArticlePublished]:
    return ledger.emitted(ARTICLE_PUBLISHED.name, ArticlePublishedEvent)


async def test_an_approved_article_is_published_and_the_cached_pages_end(
    store: Store, pages: PageCache
) -> None:
    event = reviewed("hn-1")
    before = pages.generation
    ledger = await run(pages, [record_for(ARTICLE_REVIEWED.name, event)])
    [data] = published(ledger)
    slug = make_slug("Hội nghị Ban Chấp hành", event.subject)
    assert (data.state, data.revision, data.slug, data.url_path) == (
        PublishedState.PUBLISHED,
        1,
        slug,
        f"/bai-viet/{slug}",
    )
    assert data.article is not None and data.article.title == "Hội nghị Ban Chấp hành"
    assert store.rows[event.subject]["state"] == "published"
    assert store.touched == {"articles", f"subsite:{SOURCE}", f"section:{SECTION}"}
    assert pages.generation > before


async def test_a_retraction_takes_the_text_down_and_keeps_the_address(
    store: Store, pages: PageCache
) -> None:
    first = await run(pages, [record_for(ARTICLE_REVIEWED.name, reviewed("hn-1"))])
    [shown] = published(first)
    ledger = await run(
        pages, [record_for(ARTICLE_REVIEWED.name, reviewed("hn-1", 2, ReviewDecision.RETRACTED))]
    )
    [data] = published(ledger)
    assert (data.state, data.revision, data.slug, data.article) == (
        PublishedState.RETRACTED,
        2,
        shown.slug,  # the address answers 410, not 404
        None,
    )
    assert store.rows[data.article_id]["article"] is None


async def test_a_rejected_revision_changes_nothing_public(store: Store, pages: PageCache) -> None:
    before = pages.generation
    ledger = await run(
        pages, [record_for(ARTICLE_REVIEWED.name, reviewed("hn-1", 1, ReviewDecision.REJECTED))]
    )
    assert published(ledger) == [] and ledger.rejections == []
    assert store.rows == {} and pages.generation == before


async def test_revisions_apply_in_order_and_a_late_older_one_changes_nothing(
    store: Store, pages: PageCache
) -> None:
    ledger = await run(
        pages,
        records_for(
            ARTICLE_REVIEWED.name,
            reviewed("hn-1", 1),
            reviewed("hn-1", 3),
            reviewed("hn-1", 2),  # older than the batch's revision 3
        ),
    )
    assert [d.revision for d in published(ledger)] == [1, 3]
    late = await run(pages, records_for(ARTICLE_REVIEWED.name, reviewed("hn-1", 2)))
    assert published(late) == []
    assert store.rows[article_id_for(SOURCE, "hn-1")]["revision"] == 3


async def test_a_late_approval_never_undoes_a_retraction(store: Store, pages: PageCache) -> None:
    ledger = await run(
        pages,
        records_for(
            ARTICLE_REVIEWED.name,
            reviewed("hn-1", 2, ReviewDecision.RETRACTED),  # before it was ever published
            reviewed("hn-1", 2),
            reviewed("hn-1", 1),
        ),
    )
    assert published(ledger) == []
    assert store.rows[article_id_for(SOURCE, "hn-1")]["state"] == "retracted"


async def test_the_same_event_delivered_twice_is_published_once(
    store: Store, pages: PageCache
) -> None:
    event = reviewed("hn-1")
    ledger = await run(pages, records_for(ARTICLE_REVIEWED.name, event, event))
    await run(pages, [record_for(ARTICLE_REVIEWED.name, event, offset=2)], ledger)  # redelivered
    assert len(published(ledger)) == 1


async def test_a_slug_taken_by_another_article_gets_the_long_form(
    store: Store, pages: PageCache
) -> None:
    event = reviewed("hn-1")
    store.slugs_of_others.add(make_slug("Hội nghị Ban Chấp hành", event.subject))
    [data] = published(await run(pages, [record_for(ARTICLE_REVIEWED.name, event)]))
    assert data.slug.endswith(event.subject.replace("-", ""))


async def test_articles_of_one_batch_get_their_slugs_from_one_look_up(
    store: Store, pages: PageCache
) -> None:
    first, second = reviewed("hn-1"), reviewed("hn-2")
    store.slugs_of_others.add(make_slug("Hội nghị Ban Chấp hành", second.subject))
    ledger = await run(pages, records_for(ARTICLE_REVIEWED.name, first, second))
    slugs = {d.article_id: d.slug for d in published(ledger)}
    assert slugs[first.subject] == make_slug("Hội nghị Ban Chấp hành", first.subject)
    assert slugs[second.subject].endswith(second.subject.replace("-", ""))  # held: long form
    assert len(store.slug_lookups) == 1


async def test_two_articles_whose_short_slugs_collide_in_one_batch_get_distinct_slugs(
    store: Store, pages: PageCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two ids with the same first 8 characters (a 32-bit collision) and the same title.
    first, second = reviewed("hn-1"), reviewed("hn-2")
    monkeypatch.setattr(
        "portal_publishing.usecases.make_slug", lambda title, article_id: "hoi-nghi-ban-chap-hanh"
    )
    ledger = await run(pages, records_for(ARTICLE_REVIEWED.name, first, second))
    # The first taken (in key order) keeps the short slug, the other gets its long form.
    [short, long] = published(ledger)
    assert short.slug == "hoi-nghi-ban-chap-hanh"
    assert long.slug == f"hoi-nghi-ban-chap-hanh-{long.article_id.replace('-', '')}"


async def test_bad_messages_are_dead_lettered_with_a_reason_and_the_rest_goes_on(
    store: Store, pages: PageCache
) -> None:
    good = reviewed("hn-1")
    empty = reviewed("hn-2", article=False)  # approved, but with no article to publish
    records = [
        record_for(ARTICLE_REVIEWED.name, empty, offset=0),
        Record(ARTICLE_REVIEWED.name, 0, 1, b"hn-x", b"\xff\xfe"),
        record_for(ARTICLE_REVIEWED.name, good, offset=2),
    ]
    ledger = await run(pages, records)
    assert [d.article_id for d in published(ledger)] == [good.subject]
    by_offset = {r.record.offset: r for r in ledger.rejections}
    assert sorted(by_offset) == [0, 1]
    assert (by_offset[0].error_type, by_offset[0].reason) == (
        "invalid_review",
        "decision 'approved' carries no article",
    )
    assert by_offset[1].reason and by_offset[1].record.value == b"\xff\xfe"
    assert list(store.rows) == [good.subject]
