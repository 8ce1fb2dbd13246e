"""The search consumer (article.published -> the article index) driven as the batch consumer
drives it, without Kafka or OpenSearch: the index is an in-memory fake with OpenSearch's
external versioning, the documents and the result cache are the real ones. The real broker and
OpenSearch: test_search_stack.py, test_slow_opensearch_stack.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    NormalizedArticle,
    PublishedState,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_runtime.batch import Record
from portal_runtime.testing import Ledger, drive, record_for, records_for
from portal_search.domain import IndexOp
from portal_search.handlers import published_subscription
from portal_search.index import ArticleIndex, IndexRefused, SearchUnavailable, WriteOutcome
from portal_search.resultcache import ResultCache

SOURCE = "tp-ha-noi"
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Index:
    """The article index as the consumer sees it: ``write_many`` with external versions."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[list[IndexOp]] = []  # one per ``_bulk``
        self.unavailable = 0  # the next requests that fail as OpenSearch away
        self.refuse: set[str] = set()  # article ids whose documents the mapping refuses

    async def write_many(self, ops: list[IndexOp]) -> list[WriteOutcome | IndexRefused]:
        if self.unavailable:
            self.unavailable -= 1
            raise SearchUnavailable("opensearch: connection refused")
        self.requests.append(list(ops))
        outcomes: list[WriteOutcome | IndexRefused] = []
        for op in ops:
            if op.article_id in self.refuse:
                outcomes.append(IndexRefused("mapper_parsing_exception: failed to parse [title]"))
            elif op.article_id in self.docs and self.docs[op.article_id][0] > op.version:
                outcomes.append("stale")
            else:
                self.docs[op.article_id] = (op.version, op.body)
                outcomes.append("written")
        return outcomes


@pytest.fixture
def index() -> Index:
    return Index()


@pytest.fixture
def results() -> ResultCache:
    return ResultCache(ttl_s=60, max_entries=100)


def published(
    external_id: str,
    revision: int = 1,
    *,
    state: PublishedState = PublishedState.PUBLISHED,
    title: str = "Hội nghị Ban Chấp hành",
    article: bool = True,
    subject: str | None = None,
) -> ArticlePublishedEvent:
    article_id = article_id_for(SOURCE, external_id)
    body = None
    if article and state is PublishedState.PUBLISHED:
        body = NormalizedArticle(
            title=title,
            summary="Hội nghị lần thứ mười.",
            body_html="<p>Hội nghị lần thứ mười.</p>",
            body_text=f"Hội nghị lần thứ mười, bản {revision}.",
            section="ct-tin-tuc-hoat-dong",
        )
    return ArticlePublishedEvent(
        producer="publishing",
        subject=subject or article_id,
        data=ArticlePublished(
            article_id=article_id,
            source=SOURCE,
            revision=revision,
            state=state,
            slug=f"hoi-nghi-{external_id}",
            url_path=f"/bai-viet/hoi-nghi-{external_id}",
            published_at=NOW,
            updated_at=NOW,
            article=body,
        ),
    )


async def run(index: Index, records: list[Record], results: ResultCache | None = None) -> Ledger:
    subscription = published_subscription(
        cast(ArticleIndex, index), max_body_chars=10_000, results=results
    )
    return await drive(subscription, records)


async def test_a_published_article_becomes_searchable_and_cached_answers_end(
    index: Index, results: ResultCache
) -> None:
    event = published("hn-1")
    before = results.generation
    ledger = await run(index, [record_for(ARTICLE_PUBLISHED.name, event)], results)
    version, doc = index.docs[event.subject]
    assert (version, doc["state"], doc["title"], doc["url_path"]) == (
        1,
        "published",
        "Hội nghị Ban Chấp hành",
        "/bai-viet/hoi-nghi-hn-1",
    )
    assert ledger.rejections == [] and ledger.events == []  # search emits nothing
    assert results.generation > before


async def test_a_retraction_leaves_a_tombstone_at_its_revision(index: Index) -> None:
    await run(index, [record_for(ARTICLE_PUBLISHED.name, published("hn-1", 1))])
    retraction = published("hn-1", 2, state=PublishedState.RETRACTED)
    await run(index, [record_for(ARTICLE_PUBLISHED.name, retraction)])
    version, doc = index.docs[retraction.subject]
    assert (version, doc["state"]) == (2, "retracted")
    assert "title" not in doc and "body_text" not in doc  # the retracted text is not searchable


async def test_a_batch_is_one_bulk_request_with_the_newest_revision_of_each_article(
    index: Index,
) -> None:
    await run(
        index,
        records_for(
            ARTICLE_PUBLISHED.name,
            published("hn-1", 1),
            published("hn-2", 1),
            published("hn-1", 3),
            published("hn-1", 2),  # older than the batch's revision 3
        ),
    )
    [request] = index.requests
    assert sorted((op.article_id, op.version) for op in request) == sorted(
        [(article_id_for(SOURCE, "hn-1"), 3), (article_id_for(SOURCE, "hn-2"), 1)]
    )


async def test_a_late_older_revision_is_not_an_error_and_changes_nothing(
    index: Index, results: ResultCache
) -> None:
    await run(index, [record_for(ARTICLE_PUBLISHED.name, published("hn-1", 3))], results)
    before = results.generation
    late = published("hn-1", 2, title="Bản cũ")
    ledger = await run(index, [record_for(ARTICLE_PUBLISHED.name, late)], results)
    assert index.docs[late.subject][0] == 3
    assert index.docs[late.subject][1]["title"] == "Hội nghị Ban Chấp hành"
    assert ledger.rejections == []
    assert results.generation == before  # nothing written: cached answers stay


async def test_invalid_events_are_dead_lettered_with_a_reason_and_the_rest_is_indexed(
    index: Index,
) -> None:
    good = published("hn-1")
    records = [
        record_for(ARTICLE_PUBLISHED.name, published("hn-2", subject="khac"), offset=0),
        record_for(ARTICLE_PUBLISHED.name, published("hn-3", article=False), offset=1),
        Record(ARTICLE_PUBLISHED.name, 0, 2, b"hn-x", b"not json"),
        record_for(ARTICLE_PUBLISHED.name, good, offset=3),
    ]
    ledger = await run(index, records)
    assert list(index.docs) == [good.subject]
    by_offset = {r.record.offset: r for r in ledger.rejections}
    assert sorted(by_offset) == [0, 1, 2]
    assert by_offset[0].error_type == "invalid" and "is not the article id" in by_offset[0].reason
    assert by_offset[1].reason == "state is 'published' but the event carries no article"
    assert by_offset[2].reason and by_offset[2].record.value == b"not json"


async def test_a_document_opensearch_refuses_is_dead_lettered_alone(index: Index) -> None:
    refused, good = published("hn-1"), published("hn-2")
    index.refuse.add(refused.subject)
    ledger = await run(index, records_for(ARTICLE_PUBLISHED.name, refused, good))
    [rejection] = ledger.rejections
    assert (rejection.record.offset, rejection.error_type) == (0, "index")
    assert "mapper_parsing_exception" in rejection.reason
    assert list(index.docs) == [good.subject]


async def test_opensearch_away_is_retried_never_dead_lettered(index: Index) -> None:
    event = published("hn-1")
    index.unavailable = 2
    ledger = await run(index, [record_for(ARTICLE_PUBLISHED.name, event)])
    assert ledger.rejections == []
    assert event.subject in index.docs
    assert len(index.requests) == 1  # written once it answered
