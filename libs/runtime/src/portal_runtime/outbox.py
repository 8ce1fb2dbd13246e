"""Transactional outbox and inbox: state changes and the events they cause commit together.

A handler writes its state and ``Outbox.add`` rows in one database transaction; the relay
(``relay.py``) publishes the rows to Kafka (acks=all, idempotent producer) and deletes them once
acknowledged. If the service dies between the two, the rows are published on restart: an event
may be sent twice, never lost, and every consumer is idempotent by event id (the inbox,
``first_times``, which a consumer's unit of work fills for its batch) and by article id +
revision. The trace context of the transaction (or of the message an event follows from) travels
with the row, so the Kafka span stays in the request's trace.

Rows this process commits are handed to its relay the moment the transaction commits (no
polling on the way); the relay polls the table only for rows it was not handed (another
instance's, or from before a restart).

Every event is measured before it is stored (``eventsize.py``): one the broker would refuse
raises ``EventTooLarge`` in the caller's transaction, which each service turns into its own
answer (413, a dead letter, a failed feed item). A dead letter too large for its topic keeps its
reason and loses its original bytes instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_runtime.eventsize import EventTooLarge, check_record, fit_dead_letter
from portal_runtime.logs import get_logger
from portal_runtime.metrics import DEAD_LETTERS
from portal_runtime.relay_queue import Entry, Lane, RelayQueue
from portal_runtime.telemetry import current_traceparent, tag_event

log = get_logger(__name__)

__all__ = ["EventTooLarge", "Lane", "Outbox", "inbox_table", "outbox_dead_table", "outbox_table"]


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("key", LargeBinary, nullable=True),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # The relay's scheduling (relay_queue.py): the lane, and the source it is fair between.
        Column("lane", SmallInteger, nullable=False, server_default="0"),
        Column("fair_key", String(64), nullable=True),
    )


def outbox_dead_table(metadata: MetaData) -> Table:
    """Outbox rows that can never be sent (too large, refused for good), kept with the reason."""
    return Table(
        "outbox_dead",
        metadata,
        Column("id", BigInteger, primary_key=True),  # the row's id in the outbox
        Column("topic", String(255), nullable=False),
        Column("key", LargeBinary, nullable=True),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("lane", SmallInteger, nullable=False, server_default="0"),
        Column("fair_key", String(64), nullable=True),
        Column("size_bytes", BigInteger, nullable=False),
        Column("error_type", String(64), nullable=False),
        Column("reason", Text, nullable=False),
        Column("set_aside_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


@dataclass(frozen=True)
class OutboxStats:
    waiting: int
    oldest: datetime | None
    set_aside: int


# Rows added in a session's transaction, handed to their relays when it commits.
_PENDING = "portal_outbox_pending"


@event.listens_for(Session, "after_commit")
def _hand_over_after_commit(session: Session) -> None:
    pending: list[tuple[Outbox, Entry]] | None = session.info.pop(_PENDING, None)
    for outbox, entry in pending or ():
        outbox.hand_over(entry)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


class Outbox:
    def __init__(
        self,
        outbox: Table,
        inbox: Table | None = None,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        queue_capacity: int = 50_000,
    ) -> None:
        self.table = outbox
        self.inbox = inbox
        metadata = outbox.metadata
        dead = metadata.tables.get("outbox_dead")  # a Table has no truth value
        self.dead = dead if dead is not None else outbox_dead_table(metadata)
        self.max_message_bytes = max_message_bytes
        # What the relay knows it has to send; filled at commit and by polling.
        self.queue = RelayQueue(capacity=queue_capacity)
        # Hand-overs refused while the queue was full: the relay reads the table until it
        # caught up (reading in id order keeps each key's rows in order).
        self.spilled = False
        self.wake = asyncio.Event()

    async def add(
        self,
        session: AsyncSession,
        topic: str,
        event: Envelope,
        *,
        lane: Lane = Lane.NORMAL,
        fair_key: str | None = None,
    ) -> None:
        """Queue ``event`` for ``topic`` inside the caller's transaction.

        ``lane`` and ``fair_key`` are for the relay's scheduling: a backfill goes in the bulk
        lane, and rows are taken in turn between fair keys (the agency). Raises
        ``EventTooLarge`` when the broker would refuse the event.
        """
        await self.add_many(session, [(topic, event)], lane=lane, fair_key=fair_key)

    async def add_many(
        self,
        session: AsyncSession,
        events: Sequence[tuple[str, Envelope]],
        *,
        lane: Lane = Lane.NORMAL,
        fair_key: str | None = None,
    ) -> None:
        """``add`` for several events in one statement (kept in the given order)."""
        if not events:
            return
        headers = current_traceparent()
        rows: list[dict[str, Any]] = []
        for topic, ev in events:
            # The request or message that causes an article event is about that article.
            tag_event(ev)
            key = ev.subject.encode()
            value = self._encoded(topic, ev, key, headers)
            rows.append(
                {
                    "topic": topic,
                    "key": key,
                    "value": value,
                    "headers": headers,
                    "lane": int(lane),
                    "fair_key": fair_key,
                }
            )
        pending = session.info.setdefault(_PENDING, [])
        for row_id, row in await self._insert(session, rows):
            pending.append((self, Entry(row_id, row["key"], lane, fair_key, written=row)))

    def _encoded(
        self, topic: str, ev: Envelope, key: bytes, headers: dict[str, str], *, count: bool = True
    ) -> bytes:
        if not isinstance(ev, DeadLetterEvent):
            value = encode(ev)
            check_record(topic, key, value, headers, self.max_message_bytes)
            return value
        ev, value = fit_dead_letter(topic, ev, headers, self.max_message_bytes)
        if not count:  # the caller counts it once its transaction commits
            return value
        DEAD_LETTERS.add(
            1,
            {
                "topic": ev.data.original_topic,
                "dead_letter_topic": topic,
                "consumer_group": ev.data.consumer_group,
                "error_type": ev.data.error_type,
            },
        )
        return value

    def hand_over(self, entry: Entry) -> None:
        """A committed row, for the relay to send at once (called when its transaction commits)."""
        if (self.spilled or not self.queue.add(entry)) and entry.id not in self.queue:
            self.spilled = True
        self.wake.set()

    async def add_all(
        self,
        session: AsyncSession,
        events: Sequence[tuple[str, Envelope, dict[str, str]]],
        *,
        lanes: Sequence[tuple[Lane, str | None]] | None = None,
    ) -> None:
        """Queue many ``(topic, event, trace headers)`` in the caller's transaction, in one
        statement (a consumer's batch). Each event keeps the trace context it was caused in, is
        measured like ``add``'s (``EventTooLarge``; a dead letter is fitted) and is handed to
        the relay at commit. Dead letters are counted by the caller, once committed.
        ``lanes`` gives each event's lane and fair key (default: the normal lane, none)."""
        if not events:
            return
        if lanes is None:
            lanes = [(Lane.NORMAL, None)] * len(events)
        rows: list[dict[str, Any]] = []
        for (topic, ev, headers), (lane, fair_key) in zip(events, lanes, strict=True):
            key = ev.subject.encode()
            rows.append(
                {
                    "topic": topic,
                    "key": key,
                    "value": self._encoded(topic, ev, key, headers, count=False),
                    "headers": headers,
                    "lane": int(lane),
                    "fair_key": fair_key,
                }
            )
        pending = session.info.setdefault(_PENDING, [])
        inserted = await self._insert(session, rows)
        for (row_id, row), (lane, fair_key) in zip(inserted, lanes, strict=True):
            pending.append((self, Entry(row_id, row["key"], lane, fair_key, written=row)))

    async def _insert(
        self, session: AsyncSession, rows: list[dict[str, Any]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Insert ``rows``; each with its id, in id order, which is their order (each key's
        rows stay in order). One statement compiled once for any number of rows: the
        standard insert, which SQLAlchemy caches (PostgreSQL's own ``insert`` is compiled at
        every call), run over the rows; a multi-row VALUES would be compiled again for each
        batch size. The rows go to the relay with their ids: it need not read them back."""
        result = await session.execute(
            insert(self.table).returning(self.table.c.id, sort_by_parameter_order=True),
            rows,
        )
        return sorted(
            ((row.id, r) for row, r in zip(result, rows, strict=True)), key=lambda r: r[0]
        )

    def notify(self) -> None:
        """Wake the relay (rows committed by this process are handed over already)."""
        self.wake.set()

    async def first_times(
        self, session: AsyncSession, keys: Sequence[tuple[UUID, str]]
    ) -> set[UUID]:
        """Record many ``(event id, topic)`` as processed in the caller's transaction, in one
        statement; returns the ids not seen before (the others were processed already)."""
        assert self.inbox is not None, "this service has no inbox table"
        if not keys:
            return set()
        result = await session.execute(
            text(
                # The table name is this module's own constant, never input.
                f"INSERT INTO {self.inbox.name} (event_id, topic) "  # noqa: S608
                "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:topics AS varchar[])) "
                "ON CONFLICT DO NOTHING RETURNING event_id"
            ),
            {"ids": [k for k, _ in keys], "topics": [t for _, t in keys]},
        )
        return {row[0] for row in result}

    async def backlog(self, engine: AsyncEngine) -> int:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(self.table))).scalar_one()
            )

    async def stats(self, engine: AsyncEngine) -> OutboxStats:
        """Rows waiting, when the oldest was written, rows set aside (for the gauges)."""
        async with engine.connect() as conn:
            waiting, oldest = (
                await conn.execute(
                    select(func.count(), func.min(self.table.c.created_at)).select_from(self.table)
                )
            ).one()
            dead = (await conn.execute(select(func.count()).select_from(self.dead))).scalar_one()
        return OutboxStats(int(waiting), oldest, int(dead))

    async def relay_once(self, engine: AsyncEngine, broker: KafkaBroker, batch: int = 200) -> int:
        """Read the table, send one batch; returns how many rows were published (tests, tools)."""
        from portal_runtime.relay import OutboxRelay

        relay = OutboxRelay(self, engine, broker, batch=batch)
        await relay.poll(grace=False)
        return (await relay.send_round()).sent

    async def run_relay(
        self,
        engine: AsyncEngine,
        broker: KafkaBroker,
        batch: int = 200,
        producer: str = "portal",
        **options: Any,
    ) -> None:
        """Relay for ever (a background task of the service); see ``relay.OutboxRelay``."""
        from portal_runtime.relay import OutboxRelay

        await OutboxRelay(self, engine, broker, batch=batch, producer=producer, **options).run()
