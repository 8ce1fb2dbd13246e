"""The consumer's batch path (decode, slow step, inbox, isolation), driven without Kafka or a
database through ``portal_runtime.testing``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
)
from portal_contracts.topics import ARTICLE_INGESTED
from portal_runtime.batch import Message, PermanentError, Record
from portal_runtime.consumer import Subscription
from portal_runtime.testing import drive, record_for, records_for
from portal_runtime.unit_of_work import UnitOfWork


def ingested(article_id: str, revision: int = 1, title: str = "Tin") -> ArticleIngestedEvent:
    return ArticleIngestedEvent(
        producer="test",
        subject=article_id,
        data=ArticleIngested(
            article_id=article_id,
            source="bo-y-te",
            external_id=article_id[:8],
            revision=revision,
            action=ArticleAction.UPSERT,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=ArticleContent(title=title),
        ),
    )


def echo(fail_on: str | None = None) -> Subscription[ArticleIngestedEvent]:
    """Emits each message's event again; ``fail_on`` (a title) makes the handler crash."""

    async def handle(batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork) -> None:
        for message in batch:
            content = message.event.data.content
            if content is not None and content.title == fail_on:
                raise KeyError("a bug that this message always triggers")
            uow.emit("out", message.event, cause=message)

    return Subscription(group="test", topics=[ARTICLE_INGESTED], handler=handle)


async def test_a_crashing_message_is_isolated_and_the_rest_commits_once() -> None:
    events = [ingested(str(uuid.uuid4()), title=f"Tin {i}") for i in range(9)]
    events[4] = ingested(str(uuid.uuid4()), title="độc")
    ledger = await drive(
        echo(fail_on="độc"), records_for(ARTICLE_INGESTED.name, *events), max_attempts=3
    )
    assert [e.event_id for _, e, _ in ledger.events] == [
        e.event_id for i, e in enumerate(events) if i != 4
    ]
    [rejection] = ledger.rejections
    assert rejection.record.offset == 4 and rejection.error_type == "processing"
    assert "KeyError" in rejection.reason


async def test_bad_bytes_are_refused_with_the_batch_and_a_repeat_counts_once() -> None:
    first = ingested(str(uuid.uuid4()))
    records = [
        record_for(ARTICLE_INGESTED.name, first, offset=0),
        Record(ARTICLE_INGESTED.name, 0, 1, b"k", b"{not json"),
        record_for(ARTICLE_INGESTED.name, first, offset=2),  # the relay sent it twice
    ]
    ledger = await drive(echo(), records)
    assert ledger.commits == 1
    assert [e.event_id for _, e, _ in ledger.events] == [first.event_id]
    [rejection] = ledger.rejections
    assert rejection.record.offset == 1 and rejection.error_type == "decode"

    # Delivered again (a rebalance, a crash before the offsets): the inbox absorbs it.
    again = await drive(echo(), records[:1], ledger)
    assert again.events == ledger.events and again.commits == 2


async def test_the_slow_step_runs_before_the_transaction_and_may_refuse() -> None:
    seen: list[str] = []

    async def prepare(message: Message[ArticleIngestedEvent]) -> str:
        content = message.event.data.content
        assert content is not None
        if content.title == "quá lớn":
            raise PermanentError("too big", "size")
        seen.append(content.title)
        return content.title.upper()

    async def handle(batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork) -> None:
        assert [m.prepared for m in batch] == ["TIN"]
        uow.emit("out", batch[0].event, cause=batch[0])

    ok, big = ingested(str(uuid.uuid4()), title="Tin"), ingested(str(uuid.uuid4()), title="quá lớn")
    sub = Subscription(group="test", topics=[ARTICLE_INGESTED], handler=handle, prepare=prepare)
    ledger = await drive(sub, records_for(ARTICLE_INGESTED.name, ok, big))
    assert seen == ["Tin"]
    assert [e.event_id for _, e, _ in ledger.events] == [ok.event_id]
    assert [(r.record.offset, r.error_type) for r in ledger.rejections] == [(1, "size")]
