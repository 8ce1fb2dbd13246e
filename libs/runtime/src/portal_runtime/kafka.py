"""Kafka wiring shared by every service: the broker (producer side), dead letters, and which
failures are a dependency's (retried) rather than the message's (dead-lettered).

Producers use acks=all with idempotence. Consuming is ``consumer.py``'s: batches, one transaction
per batch, offsets committed after it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import weakref
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import opensearchpy
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_runtime.batch import PermanentError, Record
from portal_runtime.kafka_security import broker_security
from portal_runtime.logs import get_logger
from portal_runtime.settings import ServiceSettings

__all__ = [
    "FATAL_PRODUCER_ERRORS",
    "TRANSIENT_ERRORS",
    "PermanentError",
    "dead_letter_for",
    "is_transient",
    "kafka_producer",
    "make_broker",
    "publish_event",
    "renew_producer",
    "started",
]

log = get_logger(__name__)

_Client = TypeVar("_Client")


async def started(client: _Client) -> _Client:
    """``client`` (an aiokafka consumer, producer or admin client) once started; a start that
    fails, or is cut short by a timeout or a shutdown, stops it again, so a half-started
    client leaves no task or connection behind (nor an "Unclosed" warning when collected)."""
    try:
        await client.start()  # type: ignore[attr-defined]
    except BaseException:
        stop = getattr(client, "stop", None) or client.close  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            await stop()
        raise
    return client


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
    # A deadlock or a serialization failure: the same transaction succeeds when tried again.
    asyncpg.exceptions.TransactionRollbackError,
    opensearchpy.exceptions.ConnectionError,
    opensearchpy.exceptions.ConnectionTimeout,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc.orig, TRANSIENT_ERRORS)
    ):
        return True
    orig = getattr(exc, "orig", None)  # SQLAlchemy keeps the driver's own error here
    if orig is not None and orig is not exc and is_transient(orig):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, TRANSIENT_ERRORS)


# Per partition; a record larger than this still goes, in a batch of its own.
PRODUCER_BATCH_BYTES = 1024 * 1024


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
        security=broker_security(settings),
        client_id=settings.instance_id,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,  # the message plus headers and framing
        # A relay round's rows for one partition go in one record batch (the default 16 KiB
        # holds three 5 KiB events): fewer, larger produce requests for the broker to handle.
        max_batch_size=PRODUCER_BATCH_BYTES,
        compression_type=(
            None if settings.kafka_compression_type == "none" else settings.kafka_compression_type
        ),
        middlewares=middlewares,
        logger=None,
        graceful_timeout=15.0,
    )
    return broker


def kafka_producer(broker: KafkaBroker) -> AIOKafkaProducer:
    """The broker's aiokafka producer (acks=all, idempotent), for sending without FastStream's
    per-message work (the outbox relay). Raises while the broker is not connected."""
    state: Any = getattr(broker.config.broker_config.producer, "_producer", None)
    if state is None:
        raise RuntimeError("the Kafka broker has no producer (not connected)")
    producer: AIOKafkaProducer = state.producer  # FastStream raises when not connected
    return producer


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
    record: Record,
    *,
    group: str,
    reason: str,
    error_type: str,
    producer: str,
    source: str | None = None,
) -> DeadLetterEvent:
    """The dead letter of one record: the reason and everything needed to send it again.

    Its event id is stable for the record and the group, so a dead letter written twice (a
    redelivered poison message) is recognisably the same one.
    """
    headers = {k: base64.b64encode(v or b"").decode() for k, v in record.headers}
    return DeadLetterEvent(
        event_id=record.position_key(group),
        producer=producer,
        subject=f"{record.topic}/{record.partition}/{record.offset}",
        data=DeadLetter(
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
            original_timestamp_ms=record.timestamp_ms,
            original_key_b64=base64.b64encode(record.key).decode() if record.key else None,
            original_value_b64=base64.b64encode(record.value or b"").decode(),
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
