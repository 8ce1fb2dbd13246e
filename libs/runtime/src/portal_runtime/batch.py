"""Batches of Kafka messages, and how one batch is applied (pure logic, no I/O).

A consumer (``consumer.py``) hands a handler a batch of messages; the handler's effect on the
whole batch commits in one transaction (``unit_of_work.py``). This module holds what decides
*how* a batch is applied, so it can be tested without Kafka or a database:

* ``apply_in_order``: try the batch as one attempt; a dependency failure retries it with
  backoff (never a dead letter for that); any other failure splits it in two halves, applied
  one after the other, until the message that fails is alone: it is dead-lettered by itself,
  once, and the others go through. Offset order is kept throughout: a half is applied only
  after everything before it.
* ``by_key`` / ``newest_per_key``: fold the messages about one entity (one article) in offset
  order, so a revision check sees the earlier members of its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from opentelemetry.context import Context

E = TypeVar("E")
T = TypeVar("T")


class PermanentError(Exception):
    """The message is valid but can never be processed (a domain rule): dead-letter it.

    ``message``, when the raiser knows it, names the message of the batch at fault, so the
    batch is split around it at once instead of by halves.
    """

    def __init__(self, reason: str, error_type: str = "rejected", message: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as the consumer received it (the original bytes, kept for dead letters)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def position_key(self, group: str) -> UUID:
        """A stable id of this record for one consumer group (dead letters are written once)."""
        return uuid5(NAMESPACE_URL, f"kafka:{group}/{self.topic}/{self.partition}/{self.offset}")


@dataclass(slots=True)
class Message(Generic[E]):
    """A decoded message of a batch: its event, where it came from, and its trace context."""

    record: Record
    event: E
    context: Context | None = None  # the producer's trace context (W3C traceparent header)
    prepared: Any = None  # what the subscription's slow step made of it, before the transaction


@dataclass(frozen=True, slots=True)
class Refused:
    """A record refused before its transaction (not a valid message of its topic, or refused by
    the subscription's slow step): dead-lettered with the reason, in the batch's transaction."""

    record: Record
    reason: str
    error_type: str


Entry = Message[Any] | Refused


def by_key(batch: Iterable[Message[E]], key: Callable[[E], str]) -> dict[str, list[Message[E]]]:
    """The batch's messages grouped by entity, keys in sorted order (the order to lock them in),
    each group in offset order (the order to fold them in)."""
    groups: dict[str, list[Message[E]]] = {}
    for message in batch:
        groups.setdefault(key(message.event), []).append(message)
    for messages in groups.values():
        messages.sort(key=lambda m: (m.record.partition, m.record.offset))
    return dict(sorted(groups.items()))


def newest_per_key(
    batch: Iterable[Message[E]], key: Callable[[E], str], revision: Callable[[E], int]
) -> dict[str, Message[E]]:
    """Per entity, the message with the highest revision (the later one on a tie): what a
    guarded upsert keeps when the same entity appears several times in one statement."""
    newest: dict[str, Message[E]] = {}
    for k, messages in by_key(batch, key).items():
        best = messages[0]
        for m in messages[1:]:
            if revision(m.event) >= revision(best.event):
                best = m
        newest[k] = best
    return newest


@dataclass(frozen=True)
class RetryPolicy:
    """How a batch is retried: dependency failures for ever, other failures a few times."""

    max_attempts: int = 5  # a message that keeps failing (a bug) is dead-lettered after these
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** min(max(failures - 1, 0), 16)))


Attempt = Callable[[Sequence[Entry]], Awaitable[None]]
DeadLetter = Callable[[Entry, str, str], Awaitable[None]]


@dataclass
class Applied:
    """What became of a batch: the entries dead-lettered (with their reasons) and the retries."""

    dead_lettered: list[tuple[Entry, str, str]] = field(default_factory=list)
    transient_retries: int = 0
    failed_attempts: int = 0  # attempts that failed for another reason (each splits or retries)


async def apply_in_order(
    entries: Sequence[Entry],
    attempt: Attempt,
    dead_letter: DeadLetter,
    *,
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy = RetryPolicy(),
    on_failure: Callable[[BaseException, int, bool], None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Applied:
    """Apply ``entries`` (in offset order) with ``attempt``, isolating what cannot be applied.

    ``attempt`` applies a slice in one transaction (or raises, having changed nothing);
    ``dead_letter`` records one entry as refused, in a transaction of its own. ``on_failure``
    is told of every failed attempt (the error, how many in a row, whether it is transient).
    """
    applied = Applied()

    async def run(part: Sequence[Entry]) -> None:
        failures = 0
        while True:
            try:
                await attempt(part)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                transient = is_transient(exc)
                failures += 1
                if on_failure is not None:
                    on_failure(exc, failures, transient)
                if transient:
                    applied.transient_retries += 1
                    await sleep(policy.delay(failures))
                    continue
                applied.failed_attempts += 1
                if len(part) > 1:
                    culprit = _culprit(exc, part)
                    if culprit is not None:
                        i = culprit
                        await run(part[:i])
                        await refuse(part[i], exc)
                        await run(part[i + 1 :])
                    else:
                        middle = len(part) // 2
                        await run(part[:middle])
                        await run(part[middle:])
                    return
                if isinstance(exc, PermanentError) or failures >= policy.max_attempts:
                    await refuse(part[0], exc, failures)
                    return
                await sleep(policy.delay(failures))

    async def refuse(entry: Entry, exc: BaseException, failures: int = 1) -> None:
        if isinstance(exc, PermanentError):
            reason, error_type = exc.reason, exc.error_type
        else:
            reason = f"failed {failures} times: {type(exc).__name__}: {exc}"
            error_type = "processing"
        while True:
            try:
                await dead_letter(entry, reason, error_type)
                applied.dead_lettered.append((entry, reason, error_type))
                return
            except asyncio.CancelledError:
                raise
            except Exception as dl_exc:
                # Nothing is skipped unrecorded: wait for the database (or the fix) and retry.
                applied.transient_retries += 1
                if on_failure is not None:
                    on_failure(dl_exc, applied.transient_retries, is_transient(dl_exc))
                await sleep(policy.delay(applied.transient_retries))

    if entries:
        await run(list(entries))
    return applied


def _culprit(exc: BaseException, part: Sequence[Entry]) -> int | None:
    message = getattr(exc, "message", None) if isinstance(exc, PermanentError) else None
    if message is None:
        return None
    for i, entry in enumerate(part):
        if entry is message:
            return i
    return None


def sorted_unique(values: Iterable[T]) -> list[T]:
    """Distinct values in sorted order: the order in which rows are locked (no deadlocks)."""
    return sorted(set(values))  # type: ignore[type-var]
