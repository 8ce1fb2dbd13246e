"""The consumer's batch path (decode, slow step, inbox, isolation), driven without Kafka or a
database through ``portal_runtime.testing``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
)
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.topics import ARTICLE_INGESTED
from portal_runtime.batch import Message, PermanentError, Record
from portal_runtime.consumer import Subscription, _gathered
from portal_runtime.testing import drive, record_for, records_for
from portal_runtime.unit_of_work import Rejection, UnitOfWork, write_dead_letters


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


# -- gathering a batch across a rebalance ------------------------------------------------------


def _raw(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        ARTICLE_INGESTED.name, partition, offset, 0, 0, b"k", b"v", None, 1, 1, []
    )


def test_a_gather_across_a_rebalance_gives_each_record_once_and_only_the_kept_partitions() -> None:
    # The group rebalanced between the two fetches of a gather: partition 0 stayed (rewound to
    # its committed offset 10, so 10-12 came again), partition 1 went to another consumer.
    tp0, tp1 = (TopicPartition(ARTICLE_INGESTED.name, p) for p in (0, 1))
    fetches = [
        {tp0: [_raw(0, o) for o in (10, 11, 12)], tp1: [_raw(1, 7)]},
        {tp0: [_raw(0, o) for o in (10, 11, 12, 13)]},
    ]

    batch = _gathered(fetches, {tp0})

    # Each record once (a record twice in a batch was applied, and dead-lettered, twice), and
    # none of the partition now another consumer's (it starts from the committed offset).
    assert [(r.partition, r.offset) for r in batch] == [(0, 10), (0, 11), (0, 12), (0, 13)]


# -- dead letters ------------------------------------------------------------------------------


class _Inbox:
    """The inbox's ON CONFLICT DO NOTHING: a key is new once, even twice in one statement."""

    def __init__(self) -> None:
        self.seen: set[UUID] = set()

    async def first_times(self, session: Any, keys: Sequence[tuple[UUID, str]]) -> set[UUID]:
        fresh = {k for k, _ in keys if k not in self.seen}
        self.seen |= fresh
        return fresh


async def test_a_record_refused_twice_in_one_transaction_is_dead_lettered_once() -> None:
    uow = UnitOfWork(
        sessions=None,  # type: ignore[arg-type]
        outbox=_Inbox(),  # type: ignore[arg-type]
        group="test",
        producer="test",
    )
    bad = Record(ARTICLE_INGESTED.name, 0, 5, b"k", b"{not json")
    refusals = [Rejection(bad, "not JSON", "decode"), Rejection(bad, "not JSON", "decode")]
    await write_dead_letters(uow, None, refusals)  # type: ignore[arg-type]
    [(topic, letter, _)] = uow.events
    assert isinstance(letter, DeadLetterEvent)
    assert (topic, letter.data.original_offset) == (f"{ARTICLE_INGESTED.name}.dlq", 5)
    # Delivered again later: the inbox knows it.
    await write_dead_letters(uow, None, refusals[:1])  # type: ignore[arg-type]
    assert len(uow.events) == 1
