"""The outbox relay: publishes a service's committed outbox rows to Kafka, fairly and in order.

One background task per service process. Each round:

1. takes a batch from the relay's queue (``relay_queue.py``: normal lane first, sources in
   turn, the bulk lane within the budget its ``Admission`` gives, each key's rows in order);
2. deletes those rows and reads them in one statement (``DELETE … WHERE id = ANY(:ids)
   RETURNING …``), in a transaction that stays open while they are sent: the delete locks them,
   so another relay sending them makes this one wait, then find them gone (nothing is sent
   twice, a key's rows never overtake each other across instances), and a round cut short
   rolls back with its rows in place; what this process wrote came with the rows' entries,
   and is not read back;
3. publishes them pipelined (acks=all, idempotent producer: order kept per partition) straight
   to the producer, in one producer span for the round (no span or metric update per message),
   each message in the trace of the transaction that wrote it (``relay_span.py``);
4. puts back, with their ids, the rows to send again (a passing failure, or behind one of their
   key), moves what can never be sent to ``outbox_dead`` with the reason, and commits: what
   the broker acknowledged is gone with the commit. One statement per round where a lock
   (``SELECT … FOR UPDATE``, itself a WAL record per row) and a ``DELETE`` were two.

A row the broker would refuse (over its size limit, measured before sending) or refuses for
good is set aside at once, and a dead-letter notice (reason, key, headers, no value) goes to the
topic's dead-letter topic, where the editors' dashboard shows it per agency; the rows behind it
move on. A row that failed for a passing reason (broker away) waits for a retry with backoff,
and so do the later rows of its key; the others move on. A producer left fenced by a broker
restart is renewed.

Rows come from the commits of this process (handed over at once) and from polling the table
every few seconds for the rest: rows of another instance that died, rows from before a restart,
rows a full queue could not take. Polling skips rows younger than a grace period, which their
own instance is about to send.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faststream.kafka import KafkaBroker
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import DEAD_LETTER_TOPICS, EVENT_TOPICS
from portal_runtime.admission import Admission, Unpaced
from portal_runtime.eventsize import record_bytes
from portal_runtime.kafka import FATAL_PRODUCER_ERRORS, kafka_producer, renew_producer
from portal_runtime.logs import get_logger
from portal_runtime.metrics import OUTBOX_RELAYED, OUTBOX_SET_ASIDE
from portal_runtime.outbox import Outbox
from portal_runtime.relay_queue import Entry, Lane
from portal_runtime.relay_span import headers_of, round_span

log = get_logger(__name__)

# Refusals the broker will repeat for ever for this record: the row is set aside.
PERMANENT_PRODUCE_ERRORS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
    InvalidTimestampError,
)

_NOTICE_TOPICS = {t.name: t.dead_letter_topic for t in EVENT_TOPICS}
_DEAD_LETTER_TOPIC_NAMES = {t.name for t in DEAD_LETTER_TOPICS}


@dataclass
class RoundResult:
    sent: int = 0
    sent_bulk: int = 0
    set_aside: int = 0
    retrying: int = 0
    gone: int = 0
    failures: list[BaseException] = field(default_factory=list)


@dataclass(frozen=True)
class _SetAside:
    row: Any
    size: int
    error_type: str
    reason: str


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        engine: AsyncEngine,
        broker: KafkaBroker,
        *,
        batch: int = 200,
        producer: str = "portal",
        admission: Admission | None = None,
        poll_interval_s: float = 2.0,
        poll_grace_s: float = 3.0,
        poll_scan: int = 1000,
        pacing_check_s: float = 0.1,
    ) -> None:
        self.outbox = outbox
        self.queue = outbox.queue
        self.engine = engine
        self.broker = broker
        self.batch = batch
        self.producer = producer
        self.admission: Admission = admission or Unpaced()
        self.poll_interval_s = poll_interval_s
        self.poll_grace_s = poll_grace_s
        self.poll_scan = poll_scan
        self.pacing_check_s = pacing_check_s
        self._cursor = 0  # the poller's position in the table (ids), wrapping at the end
        self._renew = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._running = False

    # -- polling -----------------------------------------------------------------------------

    async def poll(self, grace: bool = True) -> int:
        """Queue rows of the table the relay was not handed; returns how many it found.

        Reads ``poll_scan`` ids from where the last poll stopped, so a large backlog is covered
        over a few polls, then starts again from the beginning.
        """
        table = self.outbox.table
        query = (
            select(table.c.id, table.c.key, table.c.lane, table.c.fair_key)
            .where(table.c.id > self._cursor)
            .order_by(table.c.id)
            .limit(self.poll_scan)
        )
        if grace and not self.outbox.spilled:
            query = query.where(
                table.c.created_at < func.now() - timedelta(seconds=self.poll_grace_s)
            )
        with suppress_instrumentation():  # housekeeping, not part of any request's trace
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        found = 0
        for row in rows:
            if row.id in self.queue:
                continue
            if not self.queue.add(Entry(row.id, row.key, Lane(row.lane), row.fair_key)):
                self.outbox.spilled = True
                return found
            found += 1
        if len(rows) < self.poll_scan:
            self._cursor = 0
            if self.outbox.spilled and not self.queue.full:
                self.outbox.spilled = False  # read to the end: hand-overs are safe again
        else:
            self._cursor = rows[-1].id
        return found

    # -- sending -----------------------------------------------------------------------------

    async def send_round(self) -> RoundResult:
        """Send the next batch the queue gives (nothing if none is ready)."""
        now = time.monotonic()
        entries = self.queue.take(self.batch, self.admission.budget(now), now)
        if not entries:
            return RoundResult()
        try:
            result = await self._send(entries)
        except BaseException:
            self.queue.release(e.id for e in entries)
            raise
        self.admission.sent(result.sent_bulk, result.sent)
        return result

    async def _send(self, entries: list[Entry]) -> RoundResult:
        table = self.outbox.table
        lanes = {e.id: e.lane for e in entries}
        # The rows this process wrote came with their entries: the table gives only what they
        # lack (their ids and times), unless one is a row found by polling. That spares the
        # database detoasting and sending each value, and this process decoding it.
        written = {e.id: e.written for e in entries if e.written is not None}
        given = next(iter(written.values())) if len(written) == len(entries) else {}
        columns = [c for c in table.c if c.name not in given]
        result = RoundResult()
        async with self.engine.begin() as conn:
            with suppress_instrumentation():
                taken = await conn.execute(
                    delete(table).where(_id_in(table.c.id, list(lanes))).returning(*columns)
                )
            rows = sorted((_taken(r, written) for r in taken), key=lambda r: r.id)
            found = {r.id for r in rows}
            gone = [i for i in lanes if i not in found]  # sent by another relay meanwhile
            set_aside, sendable = self._measure(rows)
            outcomes = await self._publish([r for r, _ in sendable])
            delivered, retry = [], []
            for (row, size), outcome in zip(sendable, outcomes, strict=True):
                if outcome is None:
                    delivered.append(row)
                elif isinstance(outcome, PERMANENT_PRODUCE_ERRORS):
                    reason = f"the broker refused it for good: {type(outcome).__name__}: {outcome}"
                    set_aside.append(_SetAside(row, size, "refused", reason[:4000]))
                else:
                    retry.append(row)
                    result.failures.append(outcome)
            again = _behind_a_failure(delivered, retry)
            done = [r for r in delivered if r.id not in again]
            kept = sorted([*retry, *(r for r in delivered if r.id in again)], key=lambda r: r.id)
            if kept:  # back in the table as they were, to be sent again
                with suppress_instrumentation():
                    await conn.execute(insert(table), [vars(r) for r in kept])
            notices = [await self._set_aside(conn, item) for item in set_aside]
            finished = [r.id for r in done] + [item.row.id for item in set_aside]
        self.queue.forget([*finished, *gone])
        self.queue.retry([*(r.id for r in retry), *again], time.monotonic())
        for notice in notices:
            if notice is not None:
                self.outbox.hand_over(notice)
        result.sent = len(done)
        result.sent_bulk = sum(1 for r in done if lanes[r.id] is Lane.BULK)
        result.set_aside = len(set_aside)
        result.retrying = len(retry) + len(again)
        result.gone = len(gone)
        topics: dict[str, int] = {}
        for row in done:
            topics[row.topic] = topics.get(row.topic, 0) + 1
        for topic_name, count in topics.items():
            OUTBOX_RELAYED.add(count, {"topic": topic_name})
        return result

    def _measure(self, rows: Sequence[Any]) -> tuple[list[_SetAside], list[tuple[Any, int]]]:
        """Rows the broker would refuse for their size (set aside), and the rest with sizes."""
        limit = self.outbox.max_message_bytes
        set_aside, sendable = [], []
        for row in rows:
            size = record_bytes(row.key, row.value, dict(row.headers or {}))
            if size > limit:
                reason = (
                    f"the {row.topic} event is {size:,} bytes, over the broker's limit of "
                    f"{limit:,} bytes"
                )
                set_aside.append(_SetAside(row, size, "too_large", reason))
            else:
                sendable.append((row, size))
        return set_aside, sendable

    async def _publish(self, rows: list[Any]) -> list[BaseException | None]:
        """Publish ``rows`` pipelined; per row, None (acknowledged) or the error."""
        if not rows:
            return []
        outcomes: list[BaseException | None] = [None] * len(rows)
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        try:
            producer = kafka_producer(self.broker)  # the current one (renewed after a fault)
        except Exception as exc:  # not connected (yet): every row waits for a retry
            return [exc] * len(rows)
        with round_span(rows) as shared:
            for i, row in enumerate(rows):
                try:
                    pending.append((i, await self._publish_one(producer, row, shared)))
                except Exception as exc:  # refused before sending (e.g. over max_request_size)
                    outcomes[i] = exc
                    if not isinstance(exc, PERMANENT_PRODUCE_ERRORS):
                        # The producer cannot take anything now (broker away): the rest waits
                        # too, rather than each waiting out the same timeout.
                        outcomes[i + 1 :] = [exc] * (len(rows) - i - 1)
                        break
            results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
            for (i, _), res in zip(pending, results, strict=True):
                if isinstance(res, BaseException):
                    if isinstance(res, asyncio.CancelledError):
                        raise res
                    outcomes[i] = res
            refused = [i for i, o in enumerate(outcomes) if isinstance(o, PERMANENT_PRODUCE_ERRORS)]
            if refused and len(rows) > 1:
                await self._isolate(producer, rows, outcomes, refused, shared)
        return outcomes

    async def _isolate(
        self,
        producer: AIOKafkaProducer,
        rows: list[Any],
        outcomes: list[BaseException | None],
        refused: list[int],
        shared: list[tuple[str, bytes]] | None,
    ) -> None:
        """Send again, one at a time, the rows refused for good in a record batch shared with
        others (the broker refuses a whole batch for one row over a topic's limit), so only the
        row at fault is set aside. The rows of their keys that followed are sent again after
        them, so each key's order holds (consumers absorb the repeat)."""
        first: dict[bytes, int] = {}
        for i in refused:
            first.setdefault(rows[i].key, i)
        alone = set(refused)
        again = [
            i
            for i, row in enumerate(rows)
            if i in alone or (row.key in first and i > first[row.key])
        ]
        for n, i in enumerate(again):
            try:
                await (await self._publish_one(producer, rows[i], shared))
                outcomes[i] = None
            except PERMANENT_PRODUCE_ERRORS as exc:
                outcomes[i] = exc
            except Exception as exc:  # broker away: these wait for a retry
                for j in again[n:]:
                    outcomes[j] = exc
                return

    async def _publish_one(
        self, producer: AIOKafkaProducer, row: Any, shared: list[tuple[str, bytes]] | None
    ) -> asyncio.Future[Any]:
        # Straight to the producer: no span or metric update per message (see relay_span.py).
        future: asyncio.Future[Any] = await producer.send(
            row.topic, row.value, key=row.key, headers=shared or headers_of(row)
        )
        return future

    async def _set_aside(self, conn: AsyncConnection, item: _SetAside) -> Entry | None:
        """Move a row to ``outbox_dead``; queue a dead-letter notice; returns the notice's entry."""
        row, dead = item.row, self.outbox.dead
        with suppress_instrumentation():
            await conn.execute(
                insert(dead).values(
                    id=row.id,
                    topic=row.topic,
                    key=row.key,
                    value=row.value,
                    headers=row.headers,
                    created_at=row.created_at,
                    lane=row.lane,
                    fair_key=row.fair_key,
                    size_bytes=item.size,
                    error_type=item.error_type,
                    reason=item.reason,
                )
            )
        OUTBOX_SET_ASIDE.add(1, {"topic": row.topic, "error_type": item.error_type})
        log.error(
            "outbox_row_set_aside",
            topic=row.topic,
            row=row.id,
            size=item.size,
            reason=item.reason,
            source=row.fair_key,
        )
        dlq = _NOTICE_TOPICS.get(row.topic)
        if dlq is None or row.topic in _DEAD_LETTER_TOPIC_NAMES:
            return None
        notice = self._notice(row, item)
        value = encode(notice)
        key = notice.subject.encode()
        with suppress_instrumentation():
            notice_id = (
                await conn.execute(
                    insert(self.outbox.table)
                    .values(
                        topic=dlq,
                        key=key,
                        value=value,
                        headers=row.headers,
                        lane=int(Lane.NORMAL),
                        fair_key=row.fair_key,
                    )
                    .returning(self.outbox.table.c.id)
                )
            ).scalar_one()
        return Entry(notice_id, key, Lane.NORMAL, row.fair_key)

    def _notice(self, row: Any, item: _SetAside) -> DeadLetterEvent:
        """A dead letter saying the row was set aside: the reason and the key, not the value."""
        return DeadLetterEvent(
            producer=self.producer,
            subject=f"outbox/{self.producer}/{row.id}",
            data=DeadLetter(
                original_topic=row.topic,
                # Never on the topic: no partition or offset, nothing a redrive could send.
                original_partition=-1,
                original_offset=row.id,
                original_timestamp_ms=int(row.created_at.timestamp() * 1000),
                original_key_b64=base64.b64encode(row.key).decode() if row.key else None,
                original_value_b64="",
                original_headers={
                    k: base64.b64encode(str(v).encode()).decode()
                    for k, v in dict(row.headers or {}).items()
                },
                consumer_group=f"{self.producer}-outbox",
                reason=(
                    f"{item.reason}; set aside in {self.producer}'s outbox_dead (row {row.id}) "
                    "and never published"
                )[:4000],
                error_type=f"outbox_{item.error_type}",
                failed_at=datetime.now(UTC),
                source=row.fair_key or _source_of(row.value),
            ),
        )

    # -- the loop ----------------------------------------------------------------------------

    async def stop(self, timeout_s: float = 15.0) -> bool:
        """Send what is queued and ready (this process's last commits), then stop between two
        rounds, never inside one. True when it stopped within ``timeout_s``; else the caller
        cancels it (a round cut short is rolled back: its rows are sent again, by whoever relays
        next, at least once as always)."""
        self._stopping = True
        self.outbox.wake.set()
        if not self._running:
            return True
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Relay until stopped; survives database and broker outages."""
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False
            self._stopped.set()

    async def _run(self) -> None:
        backoff = 0.5
        first_poll_done = False
        next_poll = 0.0
        while True:
            try:
                # Cleared before looking: a hand-over from now on wakes the wait below.
                self.outbox.wake.clear()
                now = time.monotonic()
                polling = now >= next_poll or (self.outbox.spilled and len(self.queue) < self.batch)
                if polling and not self._stopping:
                    # The first poll after a start takes every row: they are all ours now.
                    await self.poll(grace=first_poll_done)
                    first_poll_done = True
                    next_poll = now + (0.2 if self.outbox.spilled else self.poll_interval_s)
                if self._renew:
                    await renew_producer(self.broker)
                    self._renew = False
                result = await self.send_round()
                backoff = 0.5
                if result.failures:
                    log.warning(
                        "outbox_relay_failed",
                        failed=len(result.failures),
                        sent=result.sent,
                        error=repr(result.failures[0]),
                    )
                    # Else every later send fails the same way, for ever.
                    if any(isinstance(f, FATAL_PRODUCER_ERRORS) for f in result.failures):
                        self._renew = True
                if result.sent or result.set_aside or result.gone:
                    continue
                if self._stopping:
                    # Nothing more is ready: what waits (retries, paced bulk rows) is the
                    # other instances' to send, after the poll grace.
                    return
                await self._wait(next_poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_failed", error=repr(exc), retry_in_s=backoff)
                if self._stopping:
                    return
                renew = isinstance(exc, FATAL_PRODUCER_ERRORS)
                self._renew = self._renew or renew
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)

    async def _wait(self, next_poll: float) -> None:
        """Until a hand-over, the next poll, the next retry, or the next look at the pacing."""
        now = time.monotonic()
        until = next_poll
        retry_at = self.queue.next_retry_at()
        if retry_at is not None:
            until = min(until, retry_at)
        if self.queue.waiting()[Lane.BULK]:
            until = min(until, now + self.pacing_check_s)
        timeout = max(0.0, until - now)
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.outbox.wake.wait()


def _behind_a_failure(delivered: list[Any], failed: list[Any]) -> set[int]:
    """Delivered rows sent after an earlier row of their key failed: they go again after it,
    so the key's order holds (consumers absorb the repeat)."""
    first_failed: dict[bytes, int] = {}
    for row in failed:
        first_failed[row.key] = min(row.id, first_failed.get(row.key, row.id))
    return {r.id for r in delivered if r.key in first_failed and r.id > first_failed[r.key]}


def _taken(row: Any, written: dict[int, dict[str, Any]]) -> SimpleNamespace:
    """A row the round took: what the table gave, and what its entry kept of it."""
    columns = dict(row._mapping)
    return SimpleNamespace(**{**written.get(columns["id"], {}), **columns})


def _id_in(column: Any, ids: list[int]) -> ColumnElement[bool]:
    """``column = ANY(:ids)``: one statement and one parameter for a whole batch."""
    return column == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]


def _source_of(value: bytes) -> str | None:
    """The agency an event is about (``data.source``), when it says."""
    try:
        data = json.loads(value).get("data")
    except (ValueError, AttributeError):
        return None
    source = data.get("source") if isinstance(data, dict) else None
    return source[:64] if isinstance(source, str) else None
