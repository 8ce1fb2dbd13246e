"""A message crosses the real Kafka broker from one service to another in one trace.

Service A commits a state change and its event in one transaction (the outbox), under the span
of an incoming request; its relay publishes; service B consumes it in a batch. B's batch span must
be a child of A's publish span (a batch of that one trace), link to the message's context, and
belong to the request's trace; the event B's batch causes travels in that trace too.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.topics import TopicSpec
from portal_launcher.components.kafka import admin_client_options, admin_service_settings
from portal_launcher.credentials import stack_secrets
from portal_launcher.settings import StackSettings
from portal_runtime.batch import Message
from portal_runtime.consumer import BatchConsumer, ConsumerConfig, Subscription
from portal_runtime.db import make_engine, make_sessionmaker, new_metadata
from portal_runtime.kafka import make_broker
from portal_runtime.outbox import Outbox, inbox_table, outbox_table
from portal_runtime.settings import ServiceSettings
from portal_runtime.telemetry import parse_traceparent, setup_tracing
from portal_runtime.unit_of_work import UnitOfWork

pytestmark = pytest.mark.stack


async def _fresh_database(settings: StackSettings, name: str) -> str:
    password = stack_secrets(settings).postgres_password
    conn = await asyncpg.connect(
        host=settings.host,
        port=settings.postgres_port,
        user="postgres",
        password=password,
        database="postgres",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return settings.database_url(name, "postgres", password)


async def test_consumer_span_is_child_of_producer_span(stack_settings: StackSettings) -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("trace-test", "", (SimpleSpanProcessor(exporter),))
    tracer = provider.get_tracer("test")
    db_url = await _fresh_database(stack_settings, "trace_test")

    metadata = new_metadata()
    outbox = Outbox(outbox_table(metadata), inbox_table(metadata))
    engine = make_engine(db_url, pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)

    base = ServiceSettings(**admin_service_settings(stack_settings))
    producer_broker = make_broker(base.model_copy(update={"service_name": "svc-a"}), provider)

    aid = article_id_for("trace-test", uuid.uuid4().hex)
    received: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    async def handle(batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork) -> None:
        for message in batch:
            if message.event.subject != aid or received.done():
                continue
            from opentelemetry import trace

            ctx = trace.get_current_span().get_span_context()
            received.set_result((ctx.trace_id, ctx.span_id))
            # What the batch causes travels in the message's trace (carried by the outbox).
            uow.emit("trace-test.caused", message.event, cause=message)

    # A topic of its own: the batch holds this trace's message only.
    topic = TopicSpec(
        name=f"test.trace.{uuid.uuid4().hex[:10]}",
        model=ArticleIngestedEvent,
        key="article_id",
        description="",
    )
    admin = AIOKafkaAdminClient(**admin_client_options(stack_settings))
    await admin.start()
    await admin.create_topics([NewTopic(topic.name, num_partitions=1, replication_factor=1)])
    consumer = BatchConsumer(
        Subscription(group=f"trace-test-{uuid.uuid4().hex[:8]}", topics=[topic], handler=handle),
        ConsumerConfig.from_settings(base.model_copy(update={"service_name": "svc-b"})),
        make_sessionmaker(engine),
        outbox,
    )
    await producer_broker.start()
    task = asyncio.create_task(consumer.run())
    try:
        event = ArticleIngestedEvent(
            producer="svc-a",
            subject=aid,
            data=ArticleIngested(
                article_id=aid,
                source="trace-test",
                external_id="1",
                revision=1,
                action=ArticleAction.UPSERT,
                channel=Channel.REST,
                received_at=datetime.now(UTC),
                content=ArticleContent(title="Theo dõi một bài viết qua Kafka"),
            ),
        )
        with tracer.start_as_current_span("POST /v1/articles", kind=SpanKind.SERVER) as request:
            request_trace = request.get_span_context().trace_id
            async with engine.begin() as conn:
                from sqlalchemy.ext.asyncio import AsyncSession

                async with AsyncSession(bind=conn) as session:
                    await outbox.add(session, topic.name, event)
        # The relay runs outside the request, as it does in a service.
        assert await outbox.relay_once(engine, producer_broker) == 1
        trace_id, consumer_span_id = await asyncio.wait_for(received, timeout=60)
        caused: list[Any] = []
        for _ in range(300):  # committed just after the handler returned
            async with engine.connect() as conn:
                caused = (await conn.execute(outbox.table.select())).all()
            if any(r.topic == "trace-test.caused" for r in caused):
                break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 30)
        await producer_broker.stop()
        await engine.dispose()
        await admin.delete_topics([topic.name])
        await admin.close()

    provider.force_flush()
    spans = exporter.get_finished_spans()
    publish = [s for s in spans if s.kind == SpanKind.PRODUCER and topic.name in s.name]
    process = [s for s in spans if s.kind == SpanKind.CONSUMER and topic.name in s.name]
    assert publish, [s.name for s in spans]
    assert process, [s.name for s in spans]
    assert trace_id == request_trace, "consumer is not in the request's trace"
    consumer = next(s for s in process if s.context.span_id == consumer_span_id)
    assert consumer.context.trace_id == request_trace
    # The batch span's parent is the producer's publish span (context from Kafka headers), and
    # it links to the message's own context.
    assert consumer.parent is not None
    assert consumer.parent.span_id in {p.context.span_id for p in publish}
    assert [link.context.span_id for link in consumer.links] == [consumer.parent.span_id]
    assert consumer.attributes["messaging.batch.message_count"] >= 1
    # The event the batch caused carries the batch span's context: the same trace.
    [row] = [r for r in caused if r.topic == "trace-test.caused"]
    assert parse_traceparent(row.headers["traceparent"]) == (
        format(request_trace, "032x"),
        format(consumer_span_id, "016x"),
    )
