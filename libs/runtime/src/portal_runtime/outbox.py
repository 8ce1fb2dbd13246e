"""Transactional outbox and inbox: state changes and the events they cause commit together.

A handler writes its state and ``Outbox.add`` rows in one database transaction; the relay
publishes the rows to Kafka (acks=all, idempotent producer) and deletes them once acknowledged.
If the service dies between the two, the rows are published on restart: an event may be sent
twice, never lost, and every consumer is idempotent by event id (the inbox, ``first_times``,
which a consumer's unit of work fills for its batch) and by article id + revision. The trace
context of the transaction (or of the message an event follows from) travels with the row, so
the Kafka span stays in the request's trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_runtime.kafka import FATAL_PRODUCER_ERRORS, renew_producer
from portal_runtime.logs import get_logger
from portal_runtime.metrics import DEAD_LETTERS, OUTBOX_RELAYED
from portal_runtime.telemetry import current_traceparent, tag_event

log = get_logger(__name__)
tracer = trace.get_tracer(__name__)


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
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Outbox:
    def __init__(self, outbox: Table, inbox: Table | None = None) -> None:
        self.table = outbox
        self.inbox = inbox
        self._wake = asyncio.Event()

    async def add(self, session: AsyncSession, topic: str, event: Envelope) -> None:
        """Queue ``event`` for ``topic`` inside the caller's transaction."""
        # The request or message that causes an article event is about that article.
        tag_event(event)
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
        await session.execute(
            self.table.insert().values(
                topic=topic,
                key=event.subject.encode(),
                value=encode(event),
                headers=current_traceparent(),
            )
        )

    async def add_all(
        self, session: AsyncSession, events: Sequence[tuple[str, Envelope, dict[str, str]]]
    ) -> None:
        """Queue many ``(topic, event, trace headers)`` in the caller's transaction, in one
        statement (a consumer's batch). Each event keeps the trace context it was caused in."""
        if not events:
            return
        await session.execute(
            self.table.insert(),
            [
                {
                    "topic": topic,
                    "key": event.subject.encode(),
                    "value": encode(event),
                    "headers": headers,
                }
                for topic, event, headers in events
            ],
        )

    def notify(self) -> None:
        """Wake the relay after a commit, so events leave without waiting for the next poll."""
        self._wake.set()

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

    async def stats(self, engine: AsyncEngine) -> tuple[int, datetime | None]:
        """Rows waiting to be relayed, and when the oldest was written (for the backlog gauges)."""
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.min(self.table.c.created_at)).select_from(self.table)
                )
            ).one()
        return int(row[0]), row[1]

    async def relay_once(self, engine: AsyncEngine, broker: KafkaBroker, batch: int = 200) -> int:
        """Publish up to ``batch`` rows in order and delete them; returns how many were sent.

        The sends are pipelined (the idempotent producer keeps their order per partition) and
        the rows are deleted only after the broker acknowledged every one of them.
        """
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(self.table)
                    .order_by(self.table.c.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            pending = [await self._send(broker, row) for row in rows]
            await asyncio.gather(*pending)
            await conn.execute(delete(self.table).where(self.table.c.id.in_([r.id for r in rows])))
        for topic_name in {r.topic for r in rows}:
            OUTBOX_RELAYED.add(sum(1 for r in rows if r.topic == topic_name), {"topic": topic_name})
        return len(rows)

    async def _send(self, broker: KafkaBroker, row: Any) -> asyncio.Future[Any]:
        # Publish in the trace context of the transaction that wrote the row.
        parent = propagate.extract(dict(row.headers or {}))
        token = otel_context.attach(parent)
        try:
            future: asyncio.Future[Any] = await broker.publish(
                row.value,
                topic=row.topic,
                key=row.key,
                headers={"content-type": "application/json"},
                no_confirm=True,
            )
            return future
        finally:
            otel_context.detach(token)

    async def run_relay(
        self,
        engine: AsyncEngine,
        broker: KafkaBroker,
        poll_interval_s: float = 0.5,
        batch: int = 200,
        linger_s: float = 0.05,
    ) -> None:
        """Relay forever (a background task of the service); survives database/broker outages."""
        backoff = poll_interval_s
        renew = False
        while True:
            try:
                # Cleared before the round: a commit from now on wakes the next one, so a round
                # that found less than a full batch need not be followed by an empty one.
                self._wake.clear()
                # The relay's own polling queries are housekeeping, not part of any request:
                # no root span every half second. Each published event still gets its span, in
                # the trace of the transaction that wrote it (``_send`` attaches that context).
                with suppress_instrumentation():
                    sent = await self.relay_once(engine, broker, batch)
                backoff = poll_interval_s
                if sent >= batch:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_failed", error=repr(exc), retry_in_s=backoff)
                # Else every later attempt fails the same way, for ever; a renewal that fails
                # (Kafka still away) is tried again after the next failure.
                renew = renew or isinstance(exc, FATAL_PRODUCER_ERRORS)
                if renew:
                    try:
                        await renew_producer(broker)
                        renew = False
                    except Exception as renewal:
                        log.warning("kafka_producer_renewal_failed", error=repr(renewal))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=poll_interval_s)
            except TimeoutError:
                continue
            # Woken by a commit: the commits of the next moments join its round (a round costs
            # several statements and a produce, whether it carries one row or hundreds).
            await asyncio.sleep(linger_s)
