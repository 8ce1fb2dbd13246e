"""The one way a service consumes Kafka: in batches, one transaction per batch, then offsets.

A service declares a ``Subscription`` (its group, topics, handler) and ``Service.consume``
runs it. For each batch (up to ``KAFKA_BATCH_MAX_RECORDS`` records, gathered for at most
``KAFKA_BATCH_MAX_WAIT_MS`` after the first):

1. every record is decoded and validated; bad bytes become a dead letter (reason + bytes);
2. the subscription's slow step (``prepare``: image fetches, CPU work) runs per message,
   outside any transaction, ``KAFKA_BATCH_SLOW_STEP_CONCURRENCY`` at a time (the event loop
   gets a turn after every step, so at most that many run between two polls of the sockets);
3. one transaction (``UnitOfWork``): the inbox insert of the batch's event ids (those already
   processed are dropped), the handler (state read and locked in key order, bulk writes,
   events queued), the dead letters and events as one multi-row outbox insert; commit;
4. the offsets of the batch's partitions, committed at most every ``KAFKA_COMMIT_INTERVAL_MS``
   and always before the partitions are given up.

A dependency failure (database, Kafka, OpenSearch down) retries the batch with backoff and never
dead-letters. Any other failure splits the batch until the message at fault is alone, which is
dead-lettered by itself (``batch.apply_in_order``). A rebalance waits up to
``KAFKA_REBALANCE_DRAIN_S`` for the batch in progress, commits what is done and gives the
partitions up; a batch still running after that is abandoned: it finishes, but never commits
offsets of partitions no longer this consumer's (their new owner gets the messages again, and
the inbox, or the handler's own idempotency, absorbs them).

Telemetry: one span per batch (``batch_span.py``), linked to each message's own trace context;
the events it causes travel in their message's trace. The lag gauges read what each consumer
knows of its partitions' lag from its own fetches and commits (``consumer_lag.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Generic

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.codec import DecodeError
from portal_runtime.batch import (
    Entry,
    Message,
    PermanentError,
    Record,
    Refused,
    apply_in_order,
)
from portal_runtime.batch_span import batch_span
from portal_runtime.consumer_lag import CommittedOffsets
from portal_runtime.kafka import is_transient, started
from portal_runtime.logs import get_logger
from portal_runtime.metrics import MESSAGE_RETRIES, MESSAGES_PROCESSED, PROCESSING_DURATION
from portal_runtime.outbox import Outbox
from portal_runtime.subscription import ConsumerConfig as ConsumerConfig
from portal_runtime.subscription import Decoder as Decoder
from portal_runtime.subscription import E
from portal_runtime.subscription import Handler as Handler
from portal_runtime.subscription import Prepare as Prepare
from portal_runtime.subscription import Subscription as Subscription
from portal_runtime.subscription import by_topic as by_topic
from portal_runtime.telemetry import context_from_headers
from portal_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)

# How long the broker holds a fetch that finds nothing new: it is also how long a consumer of
# several topics can stall. A fetch is answered as soon as one record arrives (fetch_min_bytes=1)
# on a partition it asks for, but aiokafka leaves out the partitions whose fetched records still
# wait to be consumed, and sends nothing more to the broker while one fetch is in flight. So a
# fetch sent while the busy topic's records were still waiting asks only for the idle topics
# (moderation's submissions, say), and the busy topic was not fetched again until it expired:
# at 5 s, the pipeline bench saw moderation stand still for 4 s with 352 articles waiting, and
# the machine go idle. The client's default, 500 ms, bounds that; an idle consumer then asks
# twice a second, a small cost for the broker.
FETCH_MAX_WAIT_MS = 500
# The longest one step of closing a consumer (last commit, leaving the group) may take.
_CLOSE_STEP_S = 10.0


def record_of(raw: Any) -> Record:
    """Our ``Record`` of an aiokafka ``ConsumerRecord``."""
    return Record(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple((k, bytes(v) if v is not None else b"") for k, v in raw.headers or ()),
        timestamp_ms=raw.timestamp,
    )


def _gathered(
    fetches: Iterable[Mapping[TopicPartition, Sequence[Any]]], assigned: Collection[TopicPartition]
) -> list[Record]:
    """The records of one gather's fetches, each once, in offset order, of the partitions still
    this consumer's. A rebalance between two fetches of a gather rewinds the partitions this
    consumer keeps to their committed offsets, so they are fetched again (a record twice in one
    batch would be applied, and dead-lettered, twice); a partition given up belongs to its new
    owner, who starts from the committed offset."""
    by_position: dict[tuple[str, int, int], Any] = {}
    for fetched in fetches:
        for tp, records in fetched.items():
            if tp in assigned:
                for r in records:
                    by_position.setdefault((tp.topic, tp.partition, r.offset), r)
    return [record_of(by_position[at]) for at in sorted(by_position)]


class BatchConsumer(Generic[E]):
    """One consumer of a group in this process, running a ``Subscription`` (a background task)."""

    def __init__(
        self,
        subscription: Subscription[E],
        config: ConsumerConfig,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        units_of_work: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        self.sub = subscription
        self._units_of_work = units_of_work
        self.config = config
        self.sessions = sessions
        self.outbox = outbox
        self.consumer: AIOKafkaConsumer | None = None
        self.started = asyncio.Event()
        self._decode = subscription.decoder()
        self._stopping = False
        self._inflight: asyncio.Event | None = None  # set when the batch in progress is done
        self._pending: dict[TopicPartition, int] = {}  # processed, not yet committed
        self._committed = CommittedOffsets()  # what the lag gauges read, not asking the broker
        self._last_commit = time.monotonic()
        self._slots = asyncio.Semaphore(config.slow_step_concurrency)
        self._rejected_in_attempts: set[int] = set()  # entries a handler rejected (committed)
        self._batch_topics: list[str] = []

    # --- running --------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until stopped; survives Kafka being away (at start and later)."""
        delay = self.config.retry.backoff_s
        try:
            while not self._stopping:
                try:
                    await self._start()
                    delay = self.config.retry.backoff_s
                    await self._loop()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "consumer_restarting", group=self.sub.group, error=repr(exc), delay_s=delay
                    )
                    await self._close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.config.retry.max_backoff_s)
        finally:
            await self._close()

    async def stop(self) -> None:
        """Finish the batch in progress, commit its offsets and leave the group."""
        self._stopping = True

    async def _start(self) -> None:
        if self.consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            **self.config.security,
            client_id=self.config.client_id,
            group_id=self.sub.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.config.max_records,
            max_poll_interval_ms=self.config.max_poll_interval_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            metadata_max_age_ms=self.sub.metadata_max_age_ms,
        )
        listener = _Rebalance(self)
        if self.sub.pattern is not None:
            consumer.subscribe(pattern=self.sub.pattern, listener=listener)
        else:
            consumer.subscribe(topics=[t.name for t in self.sub.topics], listener=listener)
        self.consumer = await started(consumer)
        self.started.set()

    async def _close(self) -> None:
        consumer, self.consumer = self.consumer, None
        self.started.clear()
        self._committed.clear()
        if consumer is None:
            return
        # Each step bounded: a client stuck on a broker that went away (or in a join) must
        # not hold the process past its shutdown grace; the group's session timeout then
        # frees its partitions, and the uncommitted tail is absorbed by the inbox.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._commit(consumer, force=True), timeout=_CLOSE_STEP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), timeout=_CLOSE_STEP_S)

    async def _loop(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self._stopping:
            records = await self._poll(consumer)
            if records:
                done = asyncio.Event()
                self._inflight = done
                try:
                    records = await self.process(records)
                    for r in records:
                        tp = TopicPartition(r.topic, r.partition)
                        self._pending[tp] = max(self._pending.get(tp, 0), r.offset + 1)
                finally:
                    done.set()
                    self._inflight = None
            await self._commit(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> list[Record]:
        """Up to ``max_records`` records, gathered for at most ``max_wait_s`` after the first."""
        wait_s = 1.0
        if self._pending:  # wake in time to commit what is processed
            left = self.config.commit_interval_s - (time.monotonic() - self._last_commit)
            wait_s = max(0.0, min(wait_s, left))
        fetched = await consumer.getmany(
            timeout_ms=int(wait_s * 1000), max_records=self.config.max_records
        )
        self._committed.given(fetched)
        fetches = [fetched]
        count = sum(map(len, fetched.values()))
        if count and count < self.config.max_records and self.config.max_wait_s > 0:
            deadline = time.monotonic() + self.config.max_wait_s
            while count < self.config.max_records and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                more = await consumer.getmany(
                    timeout_ms=max(1, int(left * 1000)),
                    max_records=self.config.max_records - count,
                )
                self._committed.given(more)
                fetches.append(more)
                count += sum(map(len, more.values()))
        return _gathered(fetches, consumer.assignment())

    async def _commit(self, consumer: AIOKafkaConsumer, *, force: bool = False) -> None:
        if not self._pending:
            return
        if not force and time.monotonic() - self._last_commit < self.config.commit_interval_s:
            return
        await self._commit_partitions(consumer, set(self._pending))

    async def _commit_partitions(
        self, consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
    ) -> None:
        """Commit the processed offsets of ``partitions`` that are still this consumer's."""
        assigned = consumer.assignment()
        offsets: dict[TopicPartition, int] = {}
        for tp in partitions:
            offset = self._pending.pop(tp, None)
            if offset is not None and tp in assigned:
                offsets[tp] = offset
        self._last_commit = time.monotonic()
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
            self._committed.update(offsets)
        except KafkaError as exc:
            # Rebalanced meanwhile (or the coordinator moved): whoever owns them now starts
            # from the last commit, and absorbs what it gets again.
            log.warning("offset_commit_failed", group=self.sub.group, error=repr(exc))

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before the group rebalances: let the batch in progress finish (bounded), commit."""
        inflight = self._inflight
        if inflight is not None and not inflight.is_set():
            try:
                await asyncio.wait_for(inflight.wait(), timeout=self.config.drain_s)
            except TimeoutError:
                log.warning(
                    "batch_abandoned_on_rebalance",
                    group=self.sub.group,
                    partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in revoked),
                )
        consumer = self.consumer
        if consumer is not None:
            await self._commit_partitions(consumer, [tp for tp in self._pending if tp in revoked])
        self._committed.forget(revoked)  # its next owner commits from now on

    def known_lag(self) -> dict[TopicPartition, int]:
        """The lag of each assigned partition this consumer can tell without asking the broker
        (``CommittedOffsets.known_lag``)."""
        consumer = self.consumer
        return self._committed.known_lag(consumer, FETCH_MAX_WAIT_MS) if consumer else {}

    # --- one batch ------------------------------------------------------------------------

    def _entry(self, record: Record) -> Entry:
        try:
            event = self._decode(record)
        except DecodeError as exc:
            return Refused(record, exc.reason, exc.error_type)
        except PermanentError as exc:
            return Refused(record, exc.reason, exc.error_type)
        return Message(record, event, context_from_headers(record.headers))

    async def process(self, records: Sequence[Record]) -> list[Record]:
        """Apply one batch; returns the records done (a slow step over its time leaves the
        rest to the next poll)."""
        started = time.perf_counter()
        self._batch_topics = sorted({r.topic for r in records})
        entries = [self._entry(r) for r in records]
        messages = [e for e in entries if isinstance(e, Message)]
        with batch_span(self.sub.group, entries, messages) as span:
            if self.sub.prepare is not None and messages:
                entries = await self._prepare_all(entries)
            applied = await apply_in_order(
                entries,
                self._attempt,
                self._dead_letter,
                is_transient=is_transient,
                policy=self.config.retry,
                on_failure=self._failed,
            )
            refused = {id(e) for e, _, _ in applied.dead_lettered}
            refused.update(id(e) for e in entries if isinstance(e, Refused))
            refused.update(self._rejected_in_attempts)
            self._rejected_in_attempts.clear()
            if refused:
                span.set_attribute("portal.batch.dead_letters", len(refused))
        seconds = time.perf_counter() - started
        counts: dict[tuple[str, str], int] = {}
        for entry in entries:
            outcome = "dead_letter" if id(entry) in refused else "ok"
            counts[entry.record.topic, outcome] = counts.get((entry.record.topic, outcome), 0) + 1
        # One update per label set, not per message: a histogram record costs about 10 us of
        # CPU (attributes hashed, exemplar offered), which every message of every consumer paid.
        # The histogram times batches; the counter counts their messages.
        for (topic, outcome), count in counts.items():
            labels = {"topic": topic, "consumer_group": self.sub.group, "outcome": outcome}
            MESSAGES_PROCESSED.add(count, labels)
            PROCESSING_DURATION.record(seconds, labels)
        log.debug(
            "batch_processed",
            group=self.sub.group,
            records=len(records),
            dead_letters=len(refused),
            seconds=round(seconds, 4),
        )
        return [e.record for e in entries]

    async def _prepare_all(self, entries: list[Entry]) -> list[Entry]:
        """The slow steps of a batch, within a time that keeps the consumer in its group: what
        is not done by then is left for the next poll (the partition is rewound to it)."""
        tasks = [asyncio.create_task(self._prepare(e)) for e in entries]
        budget_s = self.config.max_poll_interval_ms / 1000 / 3
        _, pending = await asyncio.wait(tasks, timeout=budget_s)
        if pending and len(pending) == len(tasks):  # never stall: the first one finishes
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if not pending:
            return [t.result() for t in tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        cut: dict[TopicPartition, int] = {}
        for entry, task in zip(entries, tasks, strict=True):
            if task in pending:
                tp = TopicPartition(entry.record.topic, entry.record.partition)
                cut[tp] = min(cut.get(tp, entry.record.offset), entry.record.offset)
        kept: list[Entry] = []
        for entry, task in zip(entries, tasks, strict=True):
            tp = TopicPartition(entry.record.topic, entry.record.partition)
            if tp not in cut or entry.record.offset < cut[tp]:
                kept.append(task.result())
        consumer = self.consumer
        for tp, offset in cut.items():
            if consumer is not None:
                with contextlib.suppress(Exception):  # revoked meanwhile: its owner reads it
                    consumer.seek(tp, offset)
        log.warning(
            "slow_steps_over_budget",
            group=self.sub.group,
            done=len(kept),
            left_for_next_poll=len(entries) - len(kept),
            budget_s=round(budget_s, 1),
        )
        return kept

    async def _prepare(self, entry: Entry) -> Entry:
        if not isinstance(entry, Message) or self.sub.prepare is None:
            return entry
        failures = 0
        while True:
            try:
                async with self._slots:
                    entry.prepared = await self.sub.prepare(entry)
                    # The loop's turn before the slot is freed: a slow step that is all CPU
                    # (normalize's text) never suspends, and a batch's worth of them would run
                    # in one turn, the process fetching and relaying in bursts meanwhile.
                    await asyncio.sleep(0)
                return entry
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                return Refused(entry.record, exc.reason, exc.error_type)
            except Exception as exc:
                failures += 1
                transient = is_transient(exc)
                self._failed(exc, failures, transient)
                if not transient and failures >= self.config.retry.max_attempts:
                    return Refused(
                        entry.record,
                        f"failed {failures} times: {type(exc).__name__}: {exc}",
                        "processing",
                    )
                await asyncio.sleep(self.config.retry.delay(failures))

    def _uow(self) -> UnitOfWork:
        if self._units_of_work is not None:
            return self._units_of_work()
        return UnitOfWork(
            self.sessions,
            self.outbox,
            group=self.sub.group,
            producer=self.config.producer,
            dead_letters=self.sub.dead_letters,
        )

    async def _attempt(self, part: Sequence[Entry]) -> None:
        uow = self._uow()
        try:
            for entry in part:
                if isinstance(entry, Refused):
                    uow.reject(entry.record, entry.reason, entry.error_type)
            messages: list[Message[E]] = [e for e in part if isinstance(e, Message)]
            if messages and self.sub.inbox:
                messages = await self._first_time(uow, messages)
            if messages:
                await self.sub.handler(messages, uow)
            await uow.commit()
        except BaseException:
            await uow.rollback()
            raise
        for rejection in uow.rejections:
            if rejection.message is not None:
                self._rejected_in_attempts.add(id(rejection.message))
            _log_dead_letter(self.sub.group, rejection.record, rejection.reason)

    async def _first_time(self, uow: UnitOfWork, messages: list[Message[E]]) -> list[Message[E]]:
        """The messages not processed before, of the topics that go through the inbox; the
        others as they are (batch order kept)."""
        if self.sub.inbox is True:
            return await uow.first_time(messages)
        checked = [m for m in messages if self.sub.uses_inbox(m.record.topic)]
        if not checked:
            return messages
        fresh = {id(m) for m in await uow.first_time(checked)}
        return [m for m in messages if not self.sub.uses_inbox(m.record.topic) or id(m) in fresh]

    async def _dead_letter(self, entry: Entry, reason: str, error_type: str) -> None:
        if not self.sub.dead_letter_poison:
            log.error(
                "message_skipped",
                group=self.sub.group,
                topic=entry.record.topic,
                partition=entry.record.partition,
                offset=entry.record.offset,
                reason=reason,
            )
            return
        uow = self._uow()
        try:
            uow.reject(entry if isinstance(entry, Message) else entry.record, reason, error_type)
            await uow.commit()
        except BaseException:
            await uow.rollback()
            raise
        _log_dead_letter(self.sub.group, entry.record, reason)

    def _failed(self, exc: BaseException, failures: int, transient: bool) -> None:
        for topic in self._batch_topics:
            MESSAGE_RETRIES.add(
                1,
                {
                    "topic": topic,
                    "consumer_group": self.sub.group,
                    "error_type": "transient" if transient else "error",
                },
            )
        span = trace.get_current_span()
        span.record_exception(exc)
        if transient:
            log.warning(
                "batch_retry_after_dependency_failure",
                group=self.sub.group,
                attempt=failures,
                error=repr(exc),
            )
        else:
            log.warning(
                "batch_attempt_failed", group=self.sub.group, attempt=failures, error=repr(exc)
            )


def _log_dead_letter(group: str, record: Record, reason: str) -> None:
    log.warning(
        "dead_lettered",
        group=group,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=reason[:500],
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer[Any]) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions_assigned",
            group=self.owner.sub.group,
            partitions=len(assigned),
        )


class Consumers:
    """The batch consumers of one service process (started and stopped with it)."""

    def __init__(
        self,
        config: ConsumerConfig,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox | None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.outbox = outbox
        self.all: list[BatchConsumer[Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add(
        self, subscription: Subscription[E], config: ConsumerConfig | None = None
    ) -> BatchConsumer[E]:
        assert self.outbox is not None, "a consuming service needs its outbox (dead letters)"
        consumer = BatchConsumer(subscription, config or self.config, self.sessions, self.outbox)
        self.all.append(consumer)
        return consumer

    def kafka_consumers(self) -> Iterable[AIOKafkaConsumer]:
        """The started aiokafka consumers."""
        return [c.consumer for c in self.all if c.consumer is not None]

    def lag_sources(self) -> list[tuple[AIOKafkaConsumer, dict[TopicPartition, int]]]:
        """Each started consumer with the lag it knows without asking the broker (the lag
        gauges ask only for the rest)."""
        return [(c.consumer, c.known_lag()) for c in self.all if c.consumer is not None]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(c.run(), name=f"consumer-{c.sub.group}-{c.sub.name}")
            for c in self.all
        ]

    async def stop(self, timeout_s: float = 15.0) -> None:
        for consumer in self.all:
            await consumer.stop()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:  # a cancelled consumer still closes its client (bounded by _CLOSE_STEP_S)
            await asyncio.wait(pending, timeout=2 * _CLOSE_STEP_S + 1)
        for task in self._tasks:
            if task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
        self._tasks = []
