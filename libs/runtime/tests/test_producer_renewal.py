"""A Kafka restart can leave aiokafka's idempotent producer with a gap in its sequence numbers
(a batch that failed while the broker was away); the broker then refuses every later batch with
OutOfOrderSequenceNumber, for good. The outbox relay renews the producer on such an error, so the
events waiting in the outbox leave once Kafka is back (tests/chaos covers the whole restart).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker

from portal_contracts.codec import decode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_launcher.components.kafka import admin_client_options, admin_service_settings
from portal_launcher.settings import StackSettings
from portal_runtime.kafka import FATAL_PRODUCER_ERRORS, publish_event, renew_producer
from portal_runtime.kafka_security import broker_security
from portal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.stack


def _operator(stack: StackSettings) -> tuple[dict[str, Any], ServiceSettings]:
    """The stack's operator as client options, and as a service's Kafka settings."""
    return admin_client_options(stack), ServiceSettings(**admin_service_settings(stack))


async def _values(kafka: dict[str, Any], topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, **kafka, auto_offset_reset="earliest")
    await consumer.start()
    try:
        out: list[bytes] = []
        while len(out) < count:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=30)
            out += [r.value for records in batches.values() for r in records if r.value]
        return out
    finally:
        await consumer.stop()


@asynccontextmanager
async def _producer_with_a_gap(
    stack_settings: StackSettings,
) -> AsyncIterator[tuple[dict[str, Any], str, KafkaBroker]]:
    """A fresh topic holding b"one", and a broker whose producer has the sequence gap a batch
    lost during a broker restart leaves behind."""
    kafka, operator = _operator(stack_settings)
    topic = f"test.renewal.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    broker = KafkaBroker(
        operator.kafka_bootstrap_servers,
        security=broker_security(operator),
        acks="all",
        enable_idempotence=True,
        logger=None,
    )
    await broker.start()
    try:
        await broker.publish(b"one", topic=topic, key=b"k")
        producer = broker.config.broker_config.producer._producer.producer  # type: ignore[attr-defined]
        producer._txn_manager.increment_sequence_number(TopicPartition(topic, 0), 3)
        yield kafka, topic, broker
    finally:
        await broker.stop()
        await admin.delete_topics([topic])
        await admin.close()


async def test_a_producer_refused_for_good_is_renewed_and_publishes_again(
    stack_settings: StackSettings,
) -> None:
    async with _producer_with_a_gap(stack_settings) as (kafka, topic, broker):
        with pytest.raises(FATAL_PRODUCER_ERRORS):
            await asyncio.wait_for(broker.publish(b"refused", topic=topic, key=b"k"), 30)

        await renew_producer(broker)
        await asyncio.wait_for(broker.publish(b"two", topic=topic, key=b"k"), 30)
        assert await _values(kafka, topic, 2) == [b"one", b"two"]


async def test_publish_event_renews_a_refused_producer_and_sends(
    stack_settings: StackSettings,
) -> None:
    """Dead letters go out through ``publish_event`` directly (not the outbox): after the same
    fault the event is still delivered, once."""
    async with _producer_with_a_gap(stack_settings) as (kafka, topic, broker):
        letter = DeadLetterEvent(
            producer="test",
            subject=f"{topic}/0/0",
            data=DeadLetter(
                original_topic=topic,
                original_partition=0,
                original_offset=0,
                original_value_b64="",
                consumer_group="test",
                reason="renewal test",
                error_type="test",
                failed_at=datetime.now(UTC),
            ),
        )
        await asyncio.wait_for(publish_event(broker, topic, letter), 60)
        values = await _values(kafka, topic, 2)
        assert values[0] == b"one"
        assert decode(values[1], DeadLetterEvent).event_id == letter.event_id
