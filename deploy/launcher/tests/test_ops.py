"""The pure part of repair and replay: lag arithmetic, redrive selection and its memory."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from portal_contracts.deadletter import DeadLetter
from portal_launcher.ops import (
    MAX_MARK_METADATA,
    DeadLetterRecord,
    Mark,
    PartitionLag,
    RedriveStateTooLarge,
    UnknownTopic,
    decode_mark,
    encode_mark,
    lag_totals,
    plan_redrive,
    redrive_headers,
    resolve_dead_letter_topic,
    summarize,
)

DLQ = "article.reviewed.dlq"


def letter(group: str, reason: str = "boom", topic: str = "article.reviewed") -> DeadLetter:
    return DeadLetter(
        original_topic=topic,
        original_partition=0,
        original_offset=1,
        original_key_b64=base64.b64encode(b"k").decode(),
        original_value_b64=base64.b64encode(b"{}").decode(),
        original_headers={"traceparent": base64.b64encode(b"00-abc").decode()},
        consumer_group=group,
        reason=reason,
        error_type="processing",
        failed_at=datetime.now(UTC),
    )


def rec(offset: int, group: str = "publishing", **kw: str) -> DeadLetterRecord:
    return DeadLetterRecord(0, offset, letter(group, **kw))


def test_lag_counts_from_commit_or_from_the_beginning() -> None:
    rows = [
        PartitionLag("g", "t", 0, committed=7, end=10, begin=0),
        PartitionLag("g", "t", 1, committed=None, end=5, begin=2),  # never committed
        PartitionLag("g", "t", 2, committed=1, end=9, begin=4),  # retention passed the commit
    ]
    assert [r.lag for r in rows] == [3, 3, 5]
    (total,) = lag_totals(rows)
    assert (total.group, total.topic, total.lag, total.partitions) == ("g", "t", 11, 3)


def test_dead_letter_topic_by_its_name_or_the_topic_it_collects_for() -> None:
    assert resolve_dead_letter_topic(DLQ) == DLQ
    assert resolve_dead_letter_topic("article.reviewed") == DLQ
    assert resolve_dead_letter_topic("partner.bo-y-te.articles") == "partner.articles.dlq"
    with pytest.raises(UnknownTopic):
        resolve_dead_letter_topic("__consumer_offsets")


def test_a_second_plan_after_the_first_sends_nothing() -> None:
    records = [rec(0), rec(1, "ingest-status"), rec(2), rec(3)]
    first = plan_redrive(DLQ, records, {0: 4}, {}, "publishing")
    assert [r.offset for r in first.send] == [0, 2, 3]
    assert first.marks[0] == Mark(4, frozenset())
    again = plan_redrive(DLQ, records, {0: 4}, first.marks, "publishing")
    assert (again.send, again.already) == ([], 3)
    # The other group's dead letter is untouched by publishing's progress.
    other = plan_redrive(DLQ, records, {0: 4}, {}, "ingest-status")
    assert [r.offset for r in other.send] == [1]


def test_a_set_aside_outbox_row_is_never_redriven() -> None:
    # A service's relay could not send the row (over the broker's limit): the notice has no
    # original bytes and no partition; the row itself stays in the service's outbox_dead.
    notice = letter("publishing-outbox").model_copy(
        update={"original_partition": -1, "original_value_b64": ""}
    )
    records = [DeadLetterRecord(0, 0, notice), rec(1, "publishing-outbox")]

    plan = plan_redrive(DLQ, records, {0: 2}, {}, "publishing-outbox")

    assert [r.offset for r in plan.send] == [1]


def test_reason_filter_leaves_the_rest_pending_and_remembers_holes() -> None:
    records = [rec(0, reason="db bug"), rec(1, reason="schema bug"), rec(2, reason="db bug")]
    first = plan_redrive(DLQ, records, {0: 3}, {}, "publishing", reason_contains="DB")
    assert [r.offset for r in first.send] == [0, 2]
    assert first.left == 1
    assert first.marks[0] == Mark(1, frozenset({2}))
    # The metadata round trip is what a later run reads back from Kafka.
    stored = decode_mark(first.marks[0].next_offset, encode_mark(first.marks[0]))
    second = plan_redrive(DLQ, records, {0: 3}, {0: stored}, "publishing")
    assert [r.offset for r in second.send] == [1]
    assert second.already == 2
    assert second.marks[0] == Mark(3, frozenset())


def test_a_forged_original_topic_is_never_sent() -> None:
    records = [rec(0, topic="ingest.secrets"), rec(1)]
    plan = plan_redrive(DLQ, records, {0: 2}, {}, "publishing")
    assert [r.offset for r in plan.send] == [1]
    assert any(c.error_type == "invalid" for c in summarize(DLQ, records))


def test_too_many_holes_refuse_instead_of_forgetting() -> None:
    records = [rec(i, reason="match" if i % 2 else "other") for i in range(MAX_MARK_METADATA)]
    with pytest.raises(RedriveStateTooLarge):
        plan_redrive(DLQ, records, {0: len(records)}, {}, "publishing", reason_contains="match")


def test_headers_are_the_original_bytes_plus_the_trail() -> None:
    headers = dict(redrive_headers(rec(5), DLQ))
    assert headers == {
        "traceparent": b"00-abc",
        "portal-redriven-from": b"article.reviewed.dlq/0/5",
    }
