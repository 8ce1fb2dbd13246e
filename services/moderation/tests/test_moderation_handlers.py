"""The review desk's consumers (article.normalized -> review items and article.reviewed;
article.ingested -> the originals) driven as the batch consumer drives them, without Kafka or
a database: the repository is an in-memory fake, the desk's rules are the real ones. The real
broker and database: test_moderation_stack.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalized,
    ArticleNormalizedEvent,
    ArticleReviewed,
    ArticleReviewedEvent,
    Channel,
    NormalizedArticle,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED, ARTICLE_REVIEWED
from portal_moderation import pipeline_repository
from portal_moderation.domain import ItemState, Policy, category_key
from portal_moderation.handlers import moderation_subscription
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_moderation.usecases import ReviewDesk
from portal_runtime.batch import Record
from portal_runtime.consumer import Subscription
from portal_runtime.testing import Ledger, drive, record_for, records_for

PRE_REVIEW = "tp-ha-noi"
TRUSTED = "bao-nhan-dan"


class Store:
    """The desk's tables as the consumers see them through ``pipeline_repository``."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[Policy, dict[str, str]]] = {
            TRUSTED: (Policy.TRUSTED, {category_key("Thời sự"): "ct-tin-tuc-hoat-dong"})
        }
        self.items: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.originals: dict[str, ArticleIngested] = {}

    async def lock_items(self, session: Any, article_ids: Sequence[str]) -> dict[str, Any]:
        return {a: dict(self.items[a]) for a in article_ids if a in self.items}

    async def sources_of(
        self, conn: Any, codes: Iterable[str]
    ) -> dict[str, tuple[Policy, dict[str, str]]]:
        return {c: self.sources[c] for c in codes if c in self.sources}

    async def save_incoming(self, session: Any, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            before = self.items.get(row["article_id"], {})
            self.items[row["article_id"]] = {
                "revision": row["revision"],
                "state": row["state"],
                "published_revision": row["published_revision"],
                "version": before.get("version", 0) + 1,
                # A retraction keeps the last article.
                "article": row["article"] if row["title"] is not None else before.get("article"),
            }

    async def add_histories(self, session: Any, rows: Sequence[dict[str, Any]]) -> None:
        self.history.extend(rows)

    async def save_originals(self, session: Any, originals: Sequence[ArticleIngested]) -> None:
        for data in originals:
            self.originals[data.article_id] = data


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    for name in ("lock_items", "sources_of", "save_incoming", "add_histories", "save_originals"):
        monkeypatch.setattr(pipeline_repository, name, getattr(fake, name))
    return fake


def normalized(
    source: str,
    external_id: str,
    revision: int = 1,
    *,
    action: ArticleAction = ArticleAction.UPSERT,
    article: bool = True,
) -> ArticleNormalizedEvent:
    article_id = article_id_for(source, external_id)
    body = None
    if action is ArticleAction.UPSERT and article:
        body = NormalizedArticle(
            title="Hội nghị Ban Chấp hành",
            summary="Hội nghị lần thứ mười.",
            body_html="<p>Hội nghị lần thứ mười.</p>",
            body_text="Hội nghị lần thứ mười.",
            categories=["Thời sự"],
        )
    return ArticleNormalizedEvent(
        producer="normalize",
        subject=article_id,
        data=ArticleNormalized(
            article_id=article_id,
            source=source,
            external_id=external_id,
            revision=revision,
            action=action,
            received_at=datetime.now(UTC),
            article=body,
        ),
    )


def subscription() -> Subscription[Any]:
    # The consumers use the batch's unit of work only.
    return moderation_subscription(ReviewDesk(cast(Any, None)), SubmissionsDesk(cast(Any, None)))


async def run(records: list[Record], ledger: Ledger | None = None) -> Ledger:
    return await drive(subscription(), records, ledger, session=object())


def reviewed(ledger: Ledger) -> list[ArticleReviewed]:
    return ledger.emitted(ARTICLE_REVIEWED.name, ArticleReviewedEvent)


async def test_an_unknown_source_waits_for_an_editor(store: Store) -> None:
    event = normalized(PRE_REVIEW, "hn-1")
    ledger = await run([record_for(ARTICLE_NORMALIZED.name, event)])
    assert store.items[event.subject]["state"] == ItemState.PENDING
    assert [h["action"] for h in store.history] == ["received"]
    assert reviewed(ledger) == []  # nothing public before an editor approves
    assert ledger.rejections == []


async def test_a_trusted_source_is_published_at_once_in_its_mapped_section(store: Store) -> None:
    event = normalized(TRUSTED, "nd-1")
    ledger = await run([record_for(ARTICLE_NORMALIZED.name, event)])
    [data] = reviewed(ledger)
    assert (data.article_id, data.revision, data.decision) == (
        event.subject,
        1,
        ReviewDecision.AUTO_PUBLISHED,
    )
    # The partner named no section; the agency's category mapping gives one.
    assert data.article is not None and data.article.section == "ct-tin-tuc-hoat-dong"
    assert store.items[event.subject]["state"] == ItemState.AUTO_PUBLISHED
    assert store.history[0]["changes"]["section"]["after"] == "ct-tin-tuc-hoat-dong"


async def test_a_retraction_by_the_source_takes_the_article_down(store: Store) -> None:
    await run([record_for(ARTICLE_NORMALIZED.name, normalized(TRUSTED, "nd-1"))])
    ledger = await run(
        [
            record_for(
                ARTICLE_NORMALIZED.name,
                normalized(TRUSTED, "nd-1", 2, action=ArticleAction.RETRACT),
            )
        ]
    )
    [data] = reviewed(ledger)
    assert (data.decision, data.revision, data.reason) == (
        ReviewDecision.RETRACTED,
        2,
        "retracted by the source",
    )
    assert store.items[article_id_for(TRUSTED, "nd-1")]["state"] == ItemState.RETRACTED


async def test_revisions_apply_in_order_and_a_late_older_one_changes_nothing(
    store: Store,
) -> None:
    ledger = await run(
        records_for(
            ARTICLE_NORMALIZED.name,
            normalized(TRUSTED, "nd-1", 1),
            normalized(TRUSTED, "nd-1", 3),
            normalized(TRUSTED, "nd-1", 2),  # older than the batch's revision 3
        )
    )
    assert [d.revision for d in reviewed(ledger)] == [1, 3]
    assert [h["revision"] for h in store.history] == [1, 3]

    late = await run(records_for(ARTICLE_NORMALIZED.name, normalized(TRUSTED, "nd-1", 2)))
    assert reviewed(late) == []
    assert store.items[article_id_for(TRUSTED, "nd-1")]["revision"] == 3


async def test_the_same_event_delivered_twice_is_reviewed_once(store: Store) -> None:
    event = normalized(TRUSTED, "nd-1")
    ledger = await run(records_for(ARTICLE_NORMALIZED.name, event, event))
    await run([record_for(ARTICLE_NORMALIZED.name, event, offset=2)], ledger)  # redelivered
    assert len(reviewed(ledger)) == 1
    assert len(store.history) == 1


async def test_bad_messages_are_dead_lettered_with_a_reason_and_the_rest_goes_on(
    store: Store,
) -> None:
    good = normalized(TRUSTED, "nd-1")
    empty = normalized(TRUSTED, "nd-2", article=False)  # an upsert with no article
    records = [
        record_for(ARTICLE_NORMALIZED.name, empty, offset=0),
        Record(ARTICLE_NORMALIZED.name, 0, 1, b"nd-x", b'{"not": "an event"}'),
        record_for(ARTICLE_NORMALIZED.name, good, offset=2),
    ]
    ledger = await run(records)
    assert [d.article_id for d in reviewed(ledger)] == [good.subject]
    by_offset = {r.record.offset: r for r in ledger.rejections}
    assert sorted(by_offset) == [0, 1]
    assert by_offset[0].reason == "an upsert without its normalised article"
    assert by_offset[1].reason and by_offset[1].record.value == b'{"not": "an event"}'
    assert list(store.items) == [good.subject]


def original(revision: int) -> ArticleIngestedEvent:
    article_id = article_id_for(PRE_REVIEW, "hn-1")
    return ArticleIngestedEvent(
        producer="ingest",
        subject=article_id,
        data=ArticleIngested(
            article_id=article_id,
            source=PRE_REVIEW,
            external_id="hn-1",
            revision=revision,
            action=ArticleAction.RETRACT,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
        ),
    )


async def test_the_newest_original_of_each_article_is_kept(store: Store) -> None:
    await run(records_for(ARTICLE_INGESTED.name, original(2), original(1)))
    assert store.originals[article_id_for(PRE_REVIEW, "hn-1")].revision == 2


async def test_a_batch_over_both_article_topics_is_one_transaction(store: Store) -> None:
    normalized_event = normalized(PRE_REVIEW, "hn-1")
    ledger = await run(
        [
            record_for(ARTICLE_INGESTED.name, original(1)),
            record_for(ARTICLE_NORMALIZED.name, normalized_event),
        ]
    )
    assert ledger.commits == 1
    assert store.originals[normalized_event.subject].revision == 1
    assert store.items[normalized_event.subject]["state"] == ItemState.PENDING
