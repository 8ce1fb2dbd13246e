"""The normalize consumer (article.ingested -> article.normalized) driven as the batch consumer
drives it, without Kafka or a database: the repository is an in-memory fake, the text repair
and the event are the real ones. The real broker and database: test_normalize_stack.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import pytest

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalized,
    ArticleNormalizedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_normalize import repository
from portal_normalize.domain import SourceRules
from portal_normalize.handlers import Ingested
from portal_normalize.settings import Settings
from portal_runtime.batch import Record
from portal_runtime.testing import Ledger, drive, record_for, records_for

SOURCE = "tp-ha-noi"
# TCVN3 bytes read as Latin-1 (a legacy newsroom's font): "Đảng bộ tỉnh lãnh đạo".
TCVN3_TITLE = "§¶ng bé tØnh l·nh ®¹o"
REPAIRED_TITLE = "Đảng bộ tỉnh lãnh đạo"


class Store:
    """The normalize tables as the handler sees them through ``repository``."""

    def __init__(self) -> None:
        self.revisions: dict[str, int] = {}
        self.stories: dict[str, str] = {}  # article id -> the story (first article) it repeats
        self.forgotten: list[str] = []

    async def lock_revisions(self, session: Any, article_ids: Sequence[str]) -> dict[str, int]:
        return {a: self.revisions[a] for a in article_ids if a in self.revisions}

    async def claim_revisions(
        self, session: Any, claimed: Sequence[tuple[ArticleNormalized, UUID]]
    ) -> None:
        for data, _ in claimed:
            self.revisions[data.article_id] = max(
                data.revision, self.revisions.get(data.article_id, 0)
            )

    async def link_duplicates(
        self, session: Any, batch: Sequence[repository.Fingerprinted]
    ) -> list[repository.Twin | None]:
        return [
            repository.Twin(self.stories[b.article_id], 0.9)
            if b.article_id in self.stories
            else None
            for b in batch
        ]

    async def forget_fingerprint(self, session: Any, article_id: str) -> None:
        self.forgotten.append(article_id)


class Rules:
    async def get(self, code: str) -> SourceRules | None:
        return None


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    for name in ("lock_revisions", "claim_revisions", "link_duplicates", "forget_fingerprint"):
        monkeypatch.setattr(repository, name, getattr(fake, name))
    return fake


def ingested(
    external_id: str,
    revision: int = 1,
    *,
    action: ArticleAction = ArticleAction.UPSERT,
    title: str = "Hội nghị Ban Chấp hành",
    content: bool = True,
) -> ArticleIngestedEvent:
    article_id = article_id_for(SOURCE, external_id)
    body = None
    if action is ArticleAction.UPSERT and content:
        body = ArticleContent(
            title=title,
            body_html="<p>Hội nghị lần thứ mười bàn về công tác xây dựng Đảng.</p>",
            section="ct-tin-tuc-hoat-dong",
        )
    return ArticleIngestedEvent(
        producer="ingest",
        subject=article_id,
        data=ArticleIngested(
            article_id=article_id,
            source=SOURCE,
            external_id=external_id,
            revision=revision,
            action=action,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=body,
        ),
    )


async def run(records: list[Record], ledger: Ledger | None = None) -> Ledger:
    handler = Ingested(None, Settings(), cast(repository.RulesCache, Rules()))
    return await drive(handler.subscription(), records, ledger, session=object())


def normalized(ledger: Ledger) -> list[ArticleNormalized]:
    return ledger.emitted(ARTICLE_NORMALIZED.name, ArticleNormalizedEvent)


async def test_an_upsert_is_repaired_and_emitted_as_normalized(store: Store) -> None:
    event = ingested("hn-1", title=TCVN3_TITLE)
    ledger = await run([record_for(ARTICLE_INGESTED.name, event)])
    [data] = normalized(ledger)
    assert (data.article_id, data.revision, data.action) == (
        event.subject,
        1,
        ArticleAction.UPSERT,
    )
    assert data.article is not None and data.article.title == REPAIRED_TITLE
    assert data.quality is not None and data.duplicate_of is None
    assert store.revisions == {event.subject: 1}
    assert ledger.rejections == []


async def test_a_retraction_is_passed_on_and_forgets_the_story(store: Store) -> None:
    store.revisions[article_id_for(SOURCE, "hn-1")] = 1
    event = ingested("hn-1", 2, action=ArticleAction.RETRACT)
    ledger = await run([record_for(ARTICLE_INGESTED.name, event)])
    [data] = normalized(ledger)
    assert (data.action, data.revision, data.article) == (ArticleAction.RETRACT, 2, None)
    assert store.forgotten == [event.subject]


async def test_a_near_duplicate_names_the_story_it_repeats(store: Store) -> None:
    first = article_id_for("xa-khac", "x-1")
    store.stories[article_id_for(SOURCE, "hn-1")] = first
    ledger = await run(records_for(ARTICLE_INGESTED.name, ingested("hn-1")))
    [data] = normalized(ledger)
    assert data.duplicate_of == first


async def test_revisions_apply_in_order_and_an_older_one_changes_nothing(store: Store) -> None:
    ledger = await run(
        records_for(
            ARTICLE_INGESTED.name,
            ingested("hn-1", 1),
            ingested("hn-1", 3),
            ingested("hn-1", 2),  # late: older than the batch's revision 3
        )
    )
    assert [d.revision for d in normalized(ledger)] == [1, 3]
    assert store.revisions == {article_id_for(SOURCE, "hn-1"): 3}

    late = await run(records_for(ARTICLE_INGESTED.name, ingested("hn-1", 2)))
    assert normalized(late) == []


async def test_the_same_event_delivered_twice_is_normalized_once(store: Store) -> None:
    event = ingested("hn-1")
    ledger = await run(records_for(ARTICLE_INGESTED.name, event, event))
    assert len(normalized(ledger)) == 1
    await run([record_for(ARTICLE_INGESTED.name, event, offset=2)], ledger)  # redelivered later
    assert len(normalized(ledger)) == 1


async def test_bad_messages_are_dead_lettered_with_a_reason_and_the_rest_goes_on(
    store: Store,
) -> None:
    good = ingested("hn-1")
    empty = ingested("hn-2", content=False)  # an upsert with nothing to normalise
    records = [
        record_for(ARTICLE_INGESTED.name, empty, offset=0),
        Record(ARTICLE_INGESTED.name, 0, 1, b"hn-x", b"\x00not json"),
        record_for(ARTICLE_INGESTED.name, good, offset=2),
    ]
    ledger = await run(records)
    assert [d.article_id for d in normalized(ledger)] == [good.subject]
    by_offset = {r.record.offset: r for r in ledger.rejections}
    assert sorted(by_offset) == [0, 1]
    assert by_offset[0].reason == "an upsert without content"
    assert by_offset[1].error_type == "decode" and by_offset[1].reason
    assert by_offset[1].record.value == b"\x00not json"  # the original bytes are kept
    assert store.revisions == {good.subject: 1}


async def test_an_article_whose_event_is_too_large_is_dead_lettered_and_the_rest_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal_normalize import handlers

    monkeypatch.setattr(handlers, "MAX_EVENT_BYTES", 1800)
    small = ingested("hn-1")
    large = ingested("hn-2", title="Hội nghị " * 55)  # 500 characters: 800 bytes more
    ledger = await run(records_for(ARTICLE_INGESTED.name, small, large))
    assert [d.article_id for d in normalized(ledger)] == [small.subject]
    [rejected] = ledger.rejections
    assert rejected.error_type == "size"
    assert rejected.reason.startswith("normalized event of ")
    assert rejected.reason.endswith(" bytes exceeds 1800")
