"""Kafka wiring shared by every service: the broker, typed event consumers, dead letters.

Producers use acks=all with idempotence. Consumers commit an offset only after the handler's
effect is durable. A message that can never be processed (bad bytes, invalid event, a domain
rule) goes to the topic's dead-letter topic with the reason and its original bytes, and the
consumer moves on; an infrastructure failure (database, broker, search down) is retried with
backoff without losing the message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import opensearchpy
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Status, StatusCode, TracerProvider
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from portal_contracts.codec import DecodeError, decode, encode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.topics import MAX_MESSAGE_BYTES, TopicSpec, dead_letter_topic
from portal_runtime.logs import get_logger
from portal_runtime.metrics import DEAD_LETTERS, MESSAGE_RETRIES, timed
from portal_runtime.settings import ServiceSettings
from portal_runtime.telemetry import tag_event

log = get_logger(__name__)

E = TypeVar("E", bound=Envelope)


class PermanentError(Exception):
    """The message is valid but can never be processed (a domain rule): dead-letter it."""

    def __init__(self, reason: str, error_type: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


# Failures of a dependency: retry the same message (never dead-letter it for this).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError and socket errors
    TimeoutError,
    KafkaError,
    OperationalError,
    InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    opensearchpy.exceptions.ConnectionError,
    opensearchpy.exceptions.ConnectionTimeout,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, TRANSIENT_ERRORS)


# Consumer settings of each broker (concurrency, poll size), read by subscribe_events.
_CONSUMER_SETTINGS: weakref.WeakKeyDictionary[KafkaBroker, ServiceSettings] = (
    weakref.WeakKeyDictionary()
)


def make_broker(
    settings: ServiceSettings,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None = None,
) -> KafkaBroker:
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)
        )
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,  # the message plus headers and framing
        middlewares=middlewares,
        logger=None,
        graceful_timeout=15.0,
    )
    _CONSUMER_SETTINGS[broker] = settings
    return broker


# After one of these aiokafka's idempotent producer never sends again: a batch that failed
# (e.g. while the broker restarted) left a gap in its sequence numbers, which the broker refuses
# for good. The Java client bumps its epoch; aiokafka needs a new producer (a new producer id).
FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)


_RENEWALS: weakref.WeakKeyDictionary[KafkaBroker, asyncio.Lock] = weakref.WeakKeyDictionary()


async def renew_producer(broker: KafkaBroker, failed: object | None = None) -> None:
    """Replace the broker's producer with a new one, with the same settings; consumers stay.

    With ``failed`` (the producer that raised), a producer another task already renewed is
    kept: the outbox relay and the dead-letter path may hit the same fault at once.
    """
    config = broker.config.broker_config
    async with _RENEWALS.setdefault(broker, asyncio.Lock()):
        producer = config.producer
        if failed is not None and getattr(producer, "_producer", None) is not failed:
            return
        with contextlib.suppress(Exception):  # the old one may be broken already
            await producer.disconnect()
        await producer.connect(
            AIOKafkaProducer(**broker._connection_kwargs),
            serializer=config.fd_config._serializer,
            codec=config.broker_codec,
        )
    log.warning("kafka_producer_renewed", reason="fatal producer error")


def dead_letter_for(
    msg: KafkaMessage,
    *,
    group: str,
    reason: str,
    error_type: str,
    producer: str,
    source: str | None = None,
) -> DeadLetterEvent:
    record = msg.raw_message
    assert not isinstance(record, tuple)
    headers = {k: base64.b64encode(v or b"").decode() for k, v in (record.headers or ())}
    value = record.value if isinstance(record.value, bytes) else b""
    return DeadLetterEvent(
        producer=producer,
        subject=f"{record.topic}/{record.partition}/{record.offset}",
        data=DeadLetter(
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
            original_timestamp_ms=record.timestamp,
            original_key_b64=base64.b64encode(record.key).decode() if record.key else None,
            original_value_b64=base64.b64encode(value).decode(),
            original_headers=headers,
            consumer_group=group,
            reason=reason[:4000],
            error_type=error_type,
            failed_at=datetime.now(UTC),
            source=source,
        ),
    )


async def publish_event(
    broker: KafkaBroker, topic: str, event: Envelope, headers: dict[str, str] | None = None
) -> None:
    """Publish one event keyed by its subject and wait for the broker's acknowledgement.

    A producer left fenced by a broker restart (``FATAL_PRODUCER_ERRORS``) is renewed and the
    send tried once more, so dead letters keep flowing after a Kafka outage.
    """
    value, key = encode(event), event.subject.encode()
    if isinstance(event, DeadLetterEvent):
        from portal_runtime.eventsize import fit_dead_letter  # eventsize imports this module

        # Over the topic's limit, the original bytes are left out: the reason still arrives.
        event, value = fit_dead_letter(topic, event, headers or {})
    all_headers = {"content-type": "application/json", **(headers or {})}
    failed = getattr(broker.config.broker_config.producer, "_producer", None)
    try:
        await broker.publish(value, topic=topic, key=key, headers=all_headers)
    except FATAL_PRODUCER_ERRORS:
        await renew_producer(broker, failed)
        await broker.publish(value, topic=topic, key=key, headers=all_headers)


async def _raw_body(msg: Any) -> Any:
    # Keep the original bytes: decoding is ours, so a bad value becomes a dead letter.
    return msg.body


class OffsetCommitter:
    """Commits the offsets of processed messages without holding up the next message.

    A commit per message costs a round trip to the group coordinator on the path of every
    message, and the broker a write. Here each consumer has at most one commit in flight, sent
    ``linger_s`` after the first message it carries, with the newest processed offset of each
    of its partitions; what is processed meanwhile goes with the next one. Only
    processed offsets are ever committed (each consumer handles its partitions one message at a
    time), so nothing is skipped; a crash or a rebalance may hand a few processed messages to
    their next consumer again, which every consumer of the portal tolerates (idempotent by event
    id or by article id and revision), exactly as a crash between effect and commit always could.
    """

    def __init__(self, linger_s: float = 0.2) -> None:
        # Offsets processed within this time after the first go in one commit (a commit is a
        # write to the broker's __consumer_offsets log, not only a round trip).
        self.linger_s = linger_s
        self._pending: dict[AIOKafkaConsumer, dict[TopicPartition, int]] = {}
        self._flushing: dict[AIOKafkaConsumer, asyncio.Task[None]] = {}

    def processed(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        consumer = getattr(msg, "consumer", None)
        if isinstance(record, tuple) or not isinstance(consumer, AIOKafkaConsumer):
            return
        tp = TopicPartition(record.topic, record.partition)
        offsets = self._pending.setdefault(consumer, {})
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        if consumer not in self._flushing:
            self._flushing[consumer] = asyncio.create_task(
                self._flush(consumer), name="kafka-offset-commit"
            )

    async def _flush(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await asyncio.sleep(self.linger_s)
            while offsets := self._pending.pop(consumer, None):
                try:
                    await consumer.commit(offsets)
                except Exception as exc:
                    # Revoked partitions (a rebalance) or a stopped consumer: their next consumer
                    # starts from the last commit. Partitions still ours are retried.
                    assigned = consumer.assignment() if not consumer._closed else set()
                    retry = {tp: o for tp, o in offsets.items() if tp in assigned}
                    log.warning("offset_commit_failed", error=repr(exc), retrying=bool(retry))
                    if not retry:
                        continue
                    newer = self._pending.setdefault(consumer, {})
                    for tp, offset in retry.items():
                        newer[tp] = max(newer.get(tp, 0), offset)
                    await asyncio.sleep(0.5)
        finally:
            self._flushing.pop(consumer, None)


def subscribe_events(
    broker: KafkaBroker,
    spec: TopicSpec,
    *,
    group: str,
    producer: str,
    handler: Callable[[E, KafkaMessage], Awaitable[None]],
    model: type[E],
    max_attempts: int = 5,
    retry_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> None:
    """Consume ``spec``'s events with ``handler``; bad messages end in ``<topic>.dlq``.

    * bytes that are not a valid event, or a ``PermanentError``: dead letter, then commit;
    * a dependency failure: retry the same message with backoff for as long as it takes;
    * any other error: retried ``max_attempts`` times, then dead-lettered with the error.
    """
    dlq = dead_letter_topic(spec.name)
    attempts: dict[tuple[int, int], int] = {}
    settings = _CONSUMER_SETTINGS.get(broker)
    # Consumers of one group, each owning some partitions: order per article is kept.
    concurrency = max(1, settings.kafka_consumer_concurrency if settings else 1)
    max_poll = settings.kafka_max_poll_records if settings else 100
    offsets = OffsetCommitter()

    async def to_dead_letters(msg: KafkaMessage, reason: str, error_type: str) -> None:
        await publish_event(
            broker,
            dlq,
            dead_letter_for(
                msg, group=group, reason=reason, error_type=error_type, producer=producer
            ),
        )
        DEAD_LETTERS.add(
            1,
            {
                "topic": spec.name,
                "dead_letter_topic": dlq,
                "consumer_group": group,
                "error_type": error_type,
            },
        )
        span = trace.get_current_span()
        span.set_status(Status(StatusCode.ERROR, reason[:200]))
        span.set_attribute("error.type", error_type)
        log.warning("dead_lettered", topic=spec.name, dlq=dlq, reason=reason, group=group)

    @broker.subscriber(
        spec.name,
        group_id=group,
        auto_offset_reset="earliest",
        # Committed by ``offsets`` once processed (or dead-lettered), off the message's path.
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_body,
        max_poll_records=max_poll,
        max_workers=concurrency,
        title=f"{producer}:{spec.name}",
    )
    async def on_message(body: Any, msg: KafkaMessage) -> None:
        await process(msg)
        offsets.processed(msg)  # not after a cancellation (shutdown): that one is redone

    async def process(msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        position = (record.partition, record.offset)
        span = trace.get_current_span()
        span.set_attributes(
            {
                "messaging.destination.name": spec.name,
                "messaging.consumer.group.name": group,
                "messaging.operation.type": "process",
            }
        )
        with timed({"topic": spec.name, "consumer_group": group, "outcome": "ok"}) as outcome:
            try:
                event = decode(record.value, expected=model)
            except DecodeError as exc:
                outcome["outcome"] = "dead_letter"
                await to_dead_letters(msg, exc.reason, exc.error_type)
                return
            tag_event(event, span)
            while True:
                try:
                    await handler(event, msg)  # type: ignore[arg-type]
                    attempts.pop(position, None)
                    return
                except PermanentError as exc:
                    attempts.pop(position, None)
                    outcome["outcome"] = "dead_letter"
                    await to_dead_letters(msg, exc.reason, exc.error_type)
                    return
                except Exception as exc:
                    n = attempts.get(position, 0) + 1
                    attempts[position] = n
                    delay = min(max_backoff_s, retry_backoff_s * 2 ** min(n - 1, 10))
                    span.record_exception(exc)
                    transient = is_transient(exc)
                    MESSAGE_RETRIES.add(
                        1,
                        {
                            "topic": spec.name,
                            "consumer_group": group,
                            "error_type": "transient" if transient else "error",
                        },
                    )
                    if transient:
                        log.warning(
                            "retrying_after_dependency_failure",
                            topic=spec.name,
                            attempt=n,
                            error=repr(exc),
                            delay_s=delay,
                        )
                    elif n >= max_attempts:
                        attempts.pop(position, None)
                        outcome["outcome"] = "dead_letter"
                        await to_dead_letters(
                            msg, f"failed {n} times: {type(exc).__name__}: {exc}", "processing"
                        )
                        return
                    else:
                        log.exception("handler_failed", topic=spec.name, attempt=n)
                    await asyncio.sleep(delay)
