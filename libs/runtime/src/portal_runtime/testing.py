"""Drive a consumer's handler without Kafka or a database (unit tests of handler logic).

``drive`` runs a ``Subscription`` over records exactly as the consumer does (decode, slow step,
inbox, the batch applied in order with poison isolation), with a ``FakeUnitOfWork`` in place of
the transaction: what the handler emitted and rejected ends up in a ``Ledger``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from portal_contracts.codec import encode
from portal_contracts.envelope import Envelope
from portal_runtime.batch import Message, Record, RetryPolicy
from portal_runtime.consumer import BatchConsumer, ConsumerConfig, Subscription
from portal_runtime.unit_of_work import Rejection, UnitOfWork

E = TypeVar("E")
M = TypeVar("M", bound=Message[Any])


@dataclass
class Ledger:
    """What committed units of work did, in commit order."""

    events: list[tuple[str, Envelope, dict[str, str]]] = field(default_factory=list)  # + trace
    rejections: list[Rejection] = field(default_factory=list)
    commits: int = 0
    seen: set[Any] = field(default_factory=set)  # the inbox: event ids processed

    def emitted(self, topic: str, event_type: type[Envelope]) -> list[Any]:
        """The payloads of the events emitted, each checked to be an ``event_type`` on ``topic``
        keyed by its subject (``data.article_id``), so its order per article holds."""
        out = []
        for emitted_on, event, _ in self.events:
            assert emitted_on == topic
            assert isinstance(event, event_type)
            data: Any = getattr(event, "data")  # noqa: B009 (every event type has its own data)
            assert event.subject == data.article_id
            out.append(data)
        return out


class FakeUnitOfWork(UnitOfWork):
    """A unit of work that records instead of writing; ``session`` is what the test gives."""

    def __init__(self, ledger: Ledger, *, group: str = "test", session: Any = None) -> None:
        self.group = group
        self.producer = "test"
        self.ledger = ledger
        self._fake_session = session
        self._events = []
        self._rejections = []
        self._after = []
        self._guards = []

    async def session(self) -> Any:
        if self._fake_session is None:
            raise AssertionError("this handler was not expected to use the database")
        return self._fake_session

    async def first_time(self, messages: Sequence[M]) -> list[M]:
        fresh: list[M] = []
        seen = set(self.ledger.seen)
        for m in messages:
            if m.event.event_id not in seen:
                seen.add(m.event.event_id)
                fresh.append(m)
        self._fresh_ids = {m.event.event_id for m in fresh}
        return fresh

    async def commit(self) -> None:
        with contextlib.ExitStack() as stack:
            for guard in self._guards:
                stack.enter_context(guard)
            self.ledger.commits += 1
        self.ledger.events.extend(self._events)
        self.ledger.rejections.extend(self._rejections)
        self.ledger.seen.update(getattr(self, "_fresh_ids", set()))
        for callback in self._after:
            callback()

    async def rollback(self) -> None:
        return None


def record_for(topic: str, event: Envelope, *, partition: int = 0, offset: int = 0) -> Record:
    """The record a producer of ``event`` would have written (keyed by its subject)."""
    return Record(topic, partition, offset, event.subject.encode(), encode(event))


def records_for(topic: str, *events: Envelope) -> list[Record]:
    """Records of ``events`` on one partition, in order."""
    return [record_for(topic, e, offset=i) for i, e in enumerate(events)]


async def drive(
    subscription: Subscription[E],
    records: Sequence[Record],
    ledger: Ledger | None = None,
    *,
    session: Any = None,
    max_attempts: int = 5,
) -> Ledger:
    """Run ``subscription`` over ``records`` as one batch, as the consumer would."""
    ledger = ledger if ledger is not None else Ledger()
    config = ConsumerConfig(
        bootstrap_servers="",
        client_id="test",
        producer="test",
        retry=RetryPolicy(max_attempts=max_attempts, backoff_s=0.0, max_backoff_s=0.0),
    )
    consumer = BatchConsumer(
        subscription,
        config,
        sessions=None,  # type: ignore[arg-type]
        outbox=None,  # type: ignore[arg-type]
        units_of_work=lambda: FakeUnitOfWork(ledger, group=subscription.group, session=session),
    )
    await consumer.process(records)
    return ledger
