"""The unit of work of a consumed batch: one database transaction for its whole effect.

A batch handler gets the batch and a ``UnitOfWork``; through it the handler reads and writes
its state (``session``), queues the events the batch causes (``emit``) and refuses the
messages a domain rule rejects (``reject``). ``commit`` then writes, in the same transaction,
the queued events and the dead letters as one multi-row outbox insert, and commits: the state,
the events, the inbox rows and the dead letters are durable together or not at all, so a
retried batch never doubles an event or a dead letter.

The consumer (``consumer.py``) makes one per attempt; a test can hand a handler a fake with
the same methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.topics import dead_letter_topic
from portal_runtime.batch import Message, Record
from portal_runtime.kafka import dead_letter_for
from portal_runtime.metrics import DEAD_LETTERS
from portal_runtime.outbox import Outbox
from portal_runtime.telemetry import context_from_headers, current_traceparent

M = TypeVar("M", bound=Message[Any])


@dataclass(frozen=True)
class Rejection:
    """A message refused for good: why, and what a dead-letter writer may want to know."""

    record: Record
    reason: str
    error_type: str
    message: Message[Any] | None = None  # None when it could not even be decoded
    detail: dict[str, Any] = field(default_factory=dict)


class DeadLetterWriter(Protocol):
    """Writes a batch's rejections inside its transaction (through ``uow.emit``), each once."""

    async def __call__(
        self, uow: UnitOfWork, session: AsyncSession, rejections: Sequence[Rejection]
    ) -> None: ...


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        *,
        group: str,
        producer: str,
        dead_letters: DeadLetterWriter | None = None,
    ) -> None:
        self.group = group
        self.producer = producer
        self.outbox = outbox
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._events: list[tuple[str, Envelope, dict[str, str]]] = []
        self._rejections: list[Rejection] = []
        self._after: list[Callable[[], None]] = []
        self._guards: list[contextlib.AbstractContextManager[Any]] = []
        self._dead_letters = dead_letters or write_dead_letters

    # --- what a handler uses -------------------------------------------------------------------

    async def session(self) -> AsyncSession:
        """The batch's transaction (begun on first use: a batch that writes nothing costs none)."""
        if self._session is None:
            self._session = self._sessions()
        return self._session

    async def first_time(self, messages: Sequence[M]) -> list[M]:
        """The messages whose event id this service has not processed yet, recorded as
        processed in this transaction (the inbox, one statement for the batch). A repeat of an
        event inside the batch counts once, at its first position."""
        seen: set[UUID] = set()
        unique: list[M] = []
        for m in messages:
            event_id = m.event.event_id
            if event_id not in seen:
                seen.add(event_id)
                unique.append(m)
        if not unique:
            return []
        fresh = await self.outbox.first_times(
            await self.session(), [(m.event.event_id, m.record.topic) for m in unique]
        )
        return [m for m in unique if m.event.event_id in fresh]

    def emit(self, topic: str, event: Envelope, *, cause: Message[Any] | None = None) -> None:
        """Queue ``event`` for ``topic`` (written to the outbox at commit). It travels in the
        trace of ``cause``, the message it follows from: one article's journey stays one trace
        even when its batch was about many articles."""
        self._events.append((topic, event, trace_headers(cause)))

    def reject(
        self,
        message: Message[Any] | Record,
        reason: str,
        error_type: str = "rejected",
        **detail: Any,
    ) -> None:
        """Refuse one message for good: a dead letter, written with this batch. Call it before
        writing anything for that message (the rest of the batch still commits)."""
        if isinstance(message, Message):
            self._rejections.append(
                Rejection(message.record, reason, error_type, message, dict(detail))
            )
        else:
            self._rejections.append(Rejection(message, reason, error_type, None, dict(detail)))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction committed (a cache to drop, a relay to wake)."""
        self._after.append(callback)

    def around_commit(self, guard: contextlib.AbstractContextManager[Any]) -> None:
        """Hold ``guard`` while the COMMIT is in flight (e.g. a page cache that must not serve
        or store pages during it)."""
        self._guards.append(guard)

    @property
    def rejections(self) -> list[Rejection]:
        return list(self._rejections)

    @property
    def events(self) -> list[tuple[str, Envelope, dict[str, str]]]:
        return list(self._events)

    # --- what the consumer does ---------------------------------------------------------------

    async def commit(self) -> None:
        """Write the rejections and the queued events, then commit; then the callbacks."""
        if self._rejections:
            session = await self.session()
            await self._dead_letters(self, session, self._rejections)
        if self._events:
            await self.outbox.add_all(await self.session(), self._events)
        if self._session is not None:
            with contextlib.ExitStack() as stack:
                for guard in self._guards:
                    stack.enter_context(guard)
                await self._session.commit()
            await self._session.close()
            self._session = None
        for topic, event, _ in self._events:
            if isinstance(event, DeadLetterEvent):
                DEAD_LETTERS.add(
                    1,
                    {
                        "topic": event.data.original_topic,
                        "dead_letter_topic": topic,
                        "consumer_group": event.data.consumer_group,
                        "error_type": event.data.error_type,
                    },
                )
        if self._events:
            self.outbox.notify()
        for callback in self._after:
            callback()

    async def rollback(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):  # the connection may be gone already
                await session.rollback()
            with contextlib.suppress(Exception):
                await session.close()


def trace_headers(cause: Message[Any] | None) -> dict[str, str]:
    """The trace context an event caused by ``cause`` carries: the current span (the batch's)
    when it belongs to the cause's trace, else the cause's own context."""
    if cause is None or cause.context is None:
        return current_traceparent()
    own = trace.get_current_span(cause.context).get_span_context()
    current = trace.get_current_span().get_span_context()
    if not own.is_valid or (current.is_valid and current.trace_id == own.trace_id):
        return current_traceparent()
    return current_traceparent(cause.context)


async def write_dead_letters(
    uow: UnitOfWork, session: AsyncSession, rejections: Sequence[Rejection]
) -> None:
    """The default: ``<topic>.dlq`` through the outbox, once per record and group (a stable key
    in the inbox table, so a redelivered poison message is not dead-lettered twice)."""
    keys = [
        (r.record.position_key(uow.group), dead_letter_topic(r.record.topic)) for r in rejections
    ]
    fresh = await uow.outbox.first_times(session, keys)
    for rejection, (key, dlq) in zip(rejections, keys, strict=True):
        if key not in fresh:
            continue
        fresh.discard(key)  # a record refused twice in one transaction: one dead letter
        uow.emit(
            dlq,
            dead_letter_for(
                rejection.record,
                group=uow.group,
                reason=rejection.reason,
                error_type=rejection.error_type,
                producer=uow.producer,
            ),
            cause=rejection.message
            or Message(rejection.record, None, context_from_headers(rejection.record.headers)),
        )


Handler = Callable[[list[M], UnitOfWork], Awaitable[None]]
