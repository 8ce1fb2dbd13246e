"""How a batch is applied, without Kafka or a database: poison isolation, retries, order, folds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from portal_runtime.batch import (
    Entry,
    Message,
    PermanentError,
    Record,
    Refused,
    RetryPolicy,
    apply_in_order,
    by_key,
    newest_per_key,
)
from portal_runtime.kafka import is_transient


@dataclass(frozen=True)
class Ev:
    article: str
    revision: int
    poison: str | None = None  # "permanent", "bug" or None


def batch(*events: Ev, partition: int = 0) -> list[Entry]:
    return [
        Message(Record("t", partition, offset, None, b"{}"), event)
        for offset, event in enumerate(events)
    ]


class Store:
    """A stand-in for the batch transaction: applies a slice, or fails as a poison makes it."""

    def __init__(self, transient_failures: int = 0) -> None:
        self.applied: list[Entry] = []
        self.attempts: list[int] = []  # sizes of the slices tried
        self.dead: list[tuple[Entry, str, str]] = []
        self.transient_failures = transient_failures
        self.sleeps: list[float] = []

    async def attempt(self, part: Sequence[Entry]) -> None:
        self.attempts.append(len(part))
        if self.transient_failures:
            self.transient_failures -= 1
            raise ConnectionRefusedError("database away")
        for entry in part:
            assert isinstance(entry, Message)
            if entry.event.poison == "permanent":
                raise PermanentError(f"rule broken by {entry.event.article}", "rule")
            if entry.event.poison == "bug":
                raise KeyError(entry.event.article)
        self.applied.extend(part)  # only a whole successful slice counts (one transaction)

    async def dead_letter(self, entry: Entry, reason: str, error_type: str) -> None:
        self.dead.append((entry, reason, error_type))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def run(store: Store, entries: list[Entry], policy: RetryPolicy | None = None) -> None:
    await apply_in_order(
        entries,
        store.attempt,
        store.dead_letter,
        is_transient=is_transient,
        policy=policy or RetryPolicy(),
        sleep=store.sleep,
    )


async def test_a_clean_batch_is_one_attempt() -> None:
    store = Store()
    entries = batch(*(Ev(f"a{i}", 1) for i in range(50)))
    await run(store, entries)
    assert store.attempts == [50]
    assert store.applied == entries
    assert store.dead == []


async def test_a_poison_message_is_isolated_and_dead_lettered_alone_once() -> None:
    store = Store()
    events = [Ev(f"a{i}", 1) for i in range(37)]
    events[23] = Ev("a23", 1, poison="permanent")
    entries = batch(*events)
    await run(store, entries)

    # Everything else went through exactly once, in offset order; the poison alone is refused.
    assert store.applied == [e for i, e in enumerate(entries) if i != 23]
    assert [(d[0], d[1], d[2]) for d in store.dead] == [(entries[23], "rule broken by a23", "rule")]
    # By halves: a handful of attempts, not one per message.
    assert len(store.attempts) <= 2 * 6 + 1
    assert store.sleeps == []  # a refusal is not retried after a pause


async def test_a_message_that_keeps_failing_is_retried_then_dead_lettered() -> None:
    store = Store()
    entries = batch(Ev("a", 1), Ev("b", 1, poison="bug"), Ev("c", 1), Ev("d", 1))
    await run(store, entries, RetryPolicy(max_attempts=3, backoff_s=0.1))

    assert store.applied == [entries[0], entries[2], entries[3]]
    assert len(store.dead) == 1
    dead, reason, error_type = store.dead[0]
    assert dead is entries[1]
    assert error_type == "processing" and reason.startswith("failed 3 times: KeyError")
    # Alone, it was tried three times with growing pauses before being given up.
    assert store.sleeps == [0.1, 0.2]


async def test_two_poisons_are_each_dead_lettered_and_order_is_kept() -> None:
    store = Store()
    events = [Ev(f"a{i}", 1) for i in range(16)]
    events[0] = Ev("a0", 1, poison="permanent")
    events[15] = Ev("a15", 1, poison="permanent")
    entries = batch(*events)
    await run(store, entries)
    assert store.applied == entries[1:15]
    assert [d[0] for d in store.dead] == [entries[0], entries[15]]


async def test_a_dependency_failure_retries_the_whole_batch_and_never_dead_letters() -> None:
    store = Store(transient_failures=4)
    entries = batch(*(Ev(f"a{i}", 1) for i in range(10)))
    await run(store, entries, RetryPolicy(backoff_s=0.5, max_backoff_s=2.0))
    assert store.attempts == [10] * 5  # never split for a dependency's failure
    assert store.applied == entries
    assert store.dead == []
    assert store.sleeps == [0.5, 1.0, 2.0, 2.0]


async def test_a_permanent_error_naming_its_message_splits_around_it_at_once() -> None:
    entries = batch(*(Ev(f"a{i}", 1) for i in range(8)))
    culprit = entries[5]
    applied: list[Entry] = []
    attempts: list[int] = []
    dead: list[Entry] = []

    async def attempt(part: Sequence[Entry]) -> None:
        attempts.append(len(part))
        if culprit in part:
            raise PermanentError("no such section", "rule", message=culprit)
        applied.extend(part)

    async def dead_letter(entry: Entry, reason: str, error_type: str) -> None:
        dead.append(entry)

    await apply_in_order(entries, attempt, dead_letter, is_transient=is_transient)
    assert attempts == [8, 5, 2]
    assert applied == entries[:5] + entries[6:]
    assert dead == [culprit]


async def test_records_refused_before_the_transaction_go_with_the_batch() -> None:
    record = Record("t", 0, 3, b"k", b"\xff")
    entries: list[Entry] = [*batch(Ev("a", 1), Ev("b", 1)), Refused(record, "not JSON", "decode")]
    seen: list[Sequence[Entry]] = []

    async def attempt(part: Sequence[Entry]) -> None:
        seen.append(part)

    async def dead_letter(entry: Entry, reason: str, error_type: str) -> None:
        raise AssertionError("written in the batch's own transaction")

    await apply_in_order(entries, attempt, dead_letter, is_transient=is_transient)
    assert seen == [entries]


async def test_a_dead_letter_that_cannot_be_written_yet_is_retried() -> None:
    store = Store()
    failures = [ConnectionResetError("db"), ConnectionResetError("db")]

    async def flaky_dead_letter(entry: Entry, reason: str, error_type: str) -> None:
        if failures:
            raise failures.pop()
        store.dead.append((entry, reason, error_type))

    entries = batch(Ev("a", 1, poison="permanent"))
    await apply_in_order(
        entries, store.attempt, flaky_dead_letter, is_transient=is_transient, sleep=store.sleep
    )
    assert [d[0] for d in store.dead] == entries
    assert len(store.sleeps) == 2


def test_messages_about_one_article_fold_in_offset_order_keys_sorted() -> None:
    first = Message(Record("t", 2, 10, None, None), Ev("b", 1))
    other = Message(Record("t", 1, 4, None, None), Ev("a", 3))
    second = Message(Record("t", 2, 11, None, None), Ev("b", 2))
    grouped = by_key([second, other, first], lambda e: e.article)
    assert list(grouped) == ["a", "b"]  # the order rows are locked in
    assert grouped["b"] == [first, second]  # the order revisions are checked in


def test_the_newest_revision_per_article_wins_and_the_later_one_on_a_tie() -> None:
    old = Message(Record("t", 0, 1, None, None), Ev("a", 2))
    older_later = Message(Record("t", 0, 2, None, None), Ev("a", 1))
    same = Message(Record("t", 0, 3, None, None), Ev("a", 2))
    assert newest_per_key([old, older_later], lambda e: e.article, lambda e: e.revision) == {
        "a": old
    }
    assert newest_per_key([old, same], lambda e: e.article, lambda e: e.revision) == {"a": same}


def test_a_record_has_one_stable_dead_letter_key_per_group() -> None:
    record = Record("article.ingested", 3, 42, b"k", b"v")
    again = Record("article.ingested", 3, 42, b"k", b"v")
    assert record.position_key("normalize") == again.position_key("normalize")
    assert record.position_key("normalize") != record.position_key("moderation")
    assert record.position_key("normalize") != Record(
        "article.ingested", 3, 43, None, None
    ).position_key("normalize")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("SELECT 1", {}, ConnectionResetError("gone")), True),
        (IntegrityError("INSERT", {}, Exception("duplicate")), False),
    ],
)
def test_database_errors_are_classified(error: DBAPIError, transient: bool) -> None:
    assert is_transient(error) is transient
