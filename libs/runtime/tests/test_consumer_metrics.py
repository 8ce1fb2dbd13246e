"""Consumer lag and processed counts, read from a service's GET /metrics after a burst.

A real service (``portal_runtime.service.Service``) consumes a topic of its own on the real Kafka,
with its own database (outbox and inbox, where dead letters are written); its handler is held
back while a burst of messages arrives, so the lag must show them all, and once released the
processed, dead-letter and lag figures must add up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
)
from portal_contracts.codec import encode
from portal_contracts.topics import TopicSpec, dead_letter_topic
from portal_launcher.components.kafka import admin_client_options, admin_service_settings
from portal_launcher.settings import StackSettings
from portal_runtime.batch import Message
from portal_runtime.consumer import Subscription
from portal_runtime.db import make_engine, new_metadata
from portal_runtime.outbox import Outbox, inbox_table, outbox_table
from portal_runtime.service import Service
from portal_runtime.settings import ServiceSettings
from portal_runtime.unit_of_work import UnitOfWork

pytestmark = pytest.mark.stack

BURST = 40
BAD = 3


@pytest.fixture
async def topic(stack_settings: StackSettings) -> AsyncIterator[TopicSpec]:
    name = f"test.metrics.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(**admin_client_options(stack_settings))
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name, num_partitions=3, replication_factor=1),
                NewTopic(dead_letter_topic(name), num_partitions=1, replication_factor=1),
            ]
        )
        yield TopicSpec(name=name, model=ArticleIngestedEvent, key="article_id", description="")
        await admin.delete_topics([name, dead_letter_topic(name)])
    finally:
        await admin.close()


def _event(i: int) -> ArticleIngestedEvent:
    article_id = str(uuid.uuid4())
    return ArticleIngestedEvent(
        producer="test",
        subject=article_id,
        data=ArticleIngested(
            article_id=article_id,
            source="bo-y-te",
            external_id=f"m-{i}",
            revision=1,
            action=ArticleAction.UPSERT,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=ArticleContent(title=f"Tin {i}", section="ct-tin-tuc-hoat-dong"),
            raw_object_key=f"raw/{i}",
        ),
    )


def _samples(text: str, name: str, **match: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items()):
                out.append((sample.labels, sample.value))
    return out


def _total(text: str, name: str, **match: str) -> float:
    return sum(value for _, value in _samples(text, name, **match))


async def _wait_for(client: httpx.AsyncClient, check: object, what: str) -> str:
    # Generous: on a fresh stack the group coordinator takes a while to come up.
    deadline = asyncio.get_running_loop().time() + 120
    text = ""
    while asyncio.get_running_loop().time() < deadline:
        text = (await client.get("/metrics")).text
        if check(text):  # type: ignore[operator]
            return text
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last /metrics:\n{text[-3000:]}")


async def test_burst_shows_as_lag_then_as_processed_counts(
    stack_settings: StackSettings, topic: TopicSpec, scratch_database_url: str
) -> None:
    metadata = new_metadata()
    outbox = Outbox(outbox_table(metadata), inbox_table(metadata))
    engine = make_engine(scratch_database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    settings = ServiceSettings(
        **admin_service_settings(stack_settings),
        service_name="metrics-test",
        database_url=scratch_database_url,
        metrics_poll_interval_s=0.3,
    )
    service = Service(settings, migrations_dir=None, outbox=outbox)
    group = f"metrics-test-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Event()

    async def handle(batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork) -> None:
        await gate.wait()

    service.consume(Subscription(group=group, topics=[topic], handler=handle))
    app = service.create_app(title="metrics test", description="")

    producer = AIOKafkaProducer(**admin_client_options(stack_settings))
    await producer.start()
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://metrics-test"
            ) as client,
        ):
            for i in range(BURST):
                event = _event(i)
                await producer.send(topic.name, encode(event), key=event.subject.encode())
            for i in range(BAD):
                await producer.send(topic.name, b"{not an event " + str(i).encode(), key=b"bad")
            await producer.flush()

            lag = {"topic": topic.name, "consumer_group": group}
            # Held back: every message of the burst is waiting (the first batch is being handled
            # and is not committed either).
            text = await _wait_for(
                client,
                lambda t: _total(t, "portal_kafka_consumer_lag", **lag) == BURST + BAD,
                "the burst to show as consumer lag",
            )
            partitions = {
                s["partition"] for s, _ in _samples(text, "portal_kafka_consumer_lag", **lag)
            }
            assert partitions == {"0", "1", "2"}
            assert _total(text, "portal_messages_processed_total", topic=topic.name) == 0

            gate.set()
            processed = {"topic": topic.name, "consumer_group": group}
            text = await _wait_for(
                client,
                lambda t: (
                    _total(t, "portal_messages_processed_total", outcome="ok", **processed) == BURST
                    and _total(t, "portal_kafka_consumer_lag", **lag) == 0
                ),
                "every message processed and the lag back to zero",
            )
            assert (
                _total(text, "portal_messages_processed_total", outcome="dead_letter", **processed)
                == BAD
            )
            assert (
                _total(
                    text,
                    "portal_dead_letters_total",
                    topic=topic.name,
                    dead_letter_topic=dead_letter_topic(topic.name),
                    error_type="decode",
                )
                == BAD
            )
            # Batches are timed, once per batch and outcome: at least one, at most a message.
            timed = _total(text, "portal_message_processing_duration_seconds_count", **processed)
            assert 1 <= timed <= BURST + BAD
            # The scrape format is Prometheus' own.
            resp = await client.get("/metrics")
            assert resp.headers["content-type"].startswith("text/plain")
    finally:
        gate.set()
        await producer.stop()
