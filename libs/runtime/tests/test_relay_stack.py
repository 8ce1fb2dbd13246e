"""The outbox relay on the real stack (PostgreSQL and Kafka): committed rows are handed over and
sent without polling, other rows are found by polling, a row that can never be sent is set
aside with its reason while the rows behind it go on, and the bulk lane waits for the pipeline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.codec import decode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.topics import ARTICLE_INGESTED, MAX_MESSAGE_BYTES
from portal_launcher.components.kafka import admin_client_options, admin_service_settings
from portal_launcher.settings import StackSettings
from portal_runtime.admission import AdmissionWindow, Hop, PipelineGate
from portal_runtime.db import make_engine, make_sessionmaker, new_metadata
from portal_runtime.kafka import make_broker
from portal_runtime.outbox import Outbox, inbox_table, outbox_table
from portal_runtime.relay import OutboxRelay
from portal_runtime.relay_queue import Lane
from portal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.stack

# Over a 20 KB topic limit even compressed (the services' producers compress with zstd).
OVER_20_KB = random.Random(7).randbytes(50_000)


@dataclass
class Rig:
    outbox: Outbox
    engine: AsyncEngine
    broker: KafkaBroker
    kafka: dict[str, Any]  # the operator's client options

    async def commit(
        self,
        *events: tuple[str, ArticleIngestedEvent],
        lane: Lane = Lane.NORMAL,
        fair_key: str | None = None,
    ) -> None:
        async with make_sessionmaker(self.engine).begin() as session:
            await self.outbox.add_many(session, list(events), lane=lane, fair_key=fair_key)

    async def insert_behind_its_back(self, topic: str, key: bytes, value: bytes, **kw: Any) -> int:
        """A row written as another instance (or an older version of the code) would."""
        async with self.engine.begin() as conn:
            return int(
                (
                    await conn.execute(
                        insert(self.outbox.table)
                        .values(topic=topic, key=key, value=value, headers={}, **kw)
                        .returning(self.outbox.table.c.id)
                    )
                ).scalar_one()
            )

    async def emptied(self) -> None:
        """Wait until the relay deleted every row it sent (or set aside)."""
        for _ in range(300):
            if not await self.rows(self.outbox.table):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"rows left in the outbox: {await self.rows(self.outbox.table)}")

    async def rows(self, table: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(table))).all())

    @contextlib.asynccontextmanager
    async def relay(self, **options: Any) -> AsyncIterator[OutboxRelay]:
        relay = OutboxRelay(self.outbox, self.engine, self.broker, producer="relay-test", **options)
        task = asyncio.create_task(relay.run())
        try:
            yield relay
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def rig(stack_settings: StackSettings, scratch_database_url: str) -> AsyncIterator[Rig]:
    metadata = new_metadata()
    outbox = Outbox(outbox_table(metadata), inbox_table(metadata))
    engine = make_engine(scratch_database_url, pool_size=2)
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    settings = ServiceSettings(service_name="relay-test", **admin_service_settings(stack_settings))
    broker = make_broker(settings, None)
    await broker.start()
    try:
        yield Rig(outbox, engine, broker, admin_client_options(stack_settings))
    finally:
        await broker.stop()
        await engine.dispose()


def ingested(source: str, title: str = "Tin thử nghiệm", body: str = "") -> ArticleIngestedEvent:
    external_id = uuid.uuid4().hex
    aid = article_id_for(source, external_id)
    return ArticleIngestedEvent(
        producer="relay-test",
        subject=aid,
        data=ArticleIngested.model_validate(
            {
                "article_id": aid,
                "source": source,
                "external_id": external_id,
                "revision": 1,
                "action": ArticleAction.UPSERT,
                "channel": Channel.REST,
                "received_at": datetime.now(UTC),
                "content": {"title": title, "section": "ct-tin-tuc-hoat-dong", "body_html": body},
            }
        ),
    )


async def new_topic(
    kafka: dict[str, Any], partitions: int = 1, config: dict[str, str] | None = None
) -> str:
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=config or {})])
    finally:
        await admin.close()
    return topic


async def read(
    kafka: dict[str, Any],
    topic: str,
    want: int,
    keys: set[bytes] | None = None,
    timeout_s: float = 60,
) -> list[Any]:
    """Records of ``topic`` (with one of ``keys``) from its beginning, until ``want`` arrived."""
    consumer = AIOKafkaConsumer(
        topic, **kafka, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < want:
            assert asyncio.get_running_loop().time() < deadline, f"saw {len(found)} of {want}"
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                found += [r for r in records if keys is None or r.key in keys]
    finally:
        await consumer.stop()
    return found


async def test_a_committed_row_is_handed_to_the_relay_and_sent_without_polling(rig: Rig) -> None:
    topic = await new_topic(rig.kafka)
    event = ingested("relay-test")
    await rig.commit((topic, event))
    (row,) = await rig.rows(rig.outbox.table)
    assert row.id in rig.outbox.queue  # handed over when the transaction committed

    async with rig.relay(poll_interval_s=3600):  # one poll at start, then none for an hour
        (record,) = await read(rig.kafka, topic, 1)
        assert decode(record.value).event_id == event.event_id
        later = ingested("relay-test")
        await rig.commit((topic, later))  # committed while the relay runs: no poll will come
        records = await read(rig.kafka, topic, 2)
        assert [decode(r.value).event_id for r in records] == [event.event_id, later.event_id]
        await rig.emptied()  # deleted once acknowledged


async def test_events_travel_compressed_so_a_topic_holds_articles_larger_than_its_limit(
    rig: Rig,
) -> None:
    # A topic's max.message.bytes limits the record batch as stored: compressed (zstd by
    # default), a 40 KB article in Vietnamese takes well under 20 KB of the broker's log.
    topic = await new_topic(rig.kafka, config={"max.message.bytes": "20000"})
    paragraph = (
        "<p>Ban Chấp hành Trung ương Đảng thảo luận, quyết định nhiều nội dung quan trọng.</p>"
    )
    event = ingested("tinh-a", body=paragraph * 450)
    value = event.model_dump_json().encode()
    assert len(value) > 40_000
    await rig.commit((topic, event), fair_key="tinh-a")

    async with rig.relay(poll_interval_s=0.2):
        (record,) = await read(rig.kafka, topic, 1)
        await rig.emptied()
    assert record.value == value
    assert not await rig.rows(rig.outbox.dead)


async def test_a_round_is_one_span_and_each_message_stays_in_its_writers_trace_in_key_order(
    rig: Rig,
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from portal_runtime.telemetry import parse_traceparent, setup_tracing

    exporter = InMemorySpanExporter()
    setup_tracing("relay-test", "", (SimpleSpanProcessor(exporter),))
    tracer = trace.get_tracer("test")
    topic = await new_topic(rig.kafka, partitions=2)

    async def write(n: int) -> tuple[list[ArticleIngestedEvent], tuple[str, str]]:
        """One request, in its own trace, writing ``n`` events of one article (one key)."""
        with tracer.start_as_current_span("request") as span:
            ctx = span.get_span_context()
            events = [
                ingested("relay-test", body="<p>" + "x" * 5000 + "</p>").model_copy(
                    update={"subject": "one-article"}
                )
                for _ in range(n)
            ]
            await rig.commit(*((topic, e) for e in events))
        return events, (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))

    relay = OutboxRelay(rig.outbox, rig.engine, rig.broker, producer="relay-test")
    # Three requests' rows in one round: one span, a root linked to the three writers, and each
    # message in its own writer's trace, in the key's order.
    written = [await write(10) for _ in range(3)]
    exporter.clear()
    assert (await relay.send_round()).sent == 30
    [span] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert span.parent is None
    writers = [w for _, w in written]
    linked = [
        (format(k.context.trace_id, "032x"), format(k.context.span_id, "016x")) for k in span.links
    ]
    assert linked == writers
    assert span.attributes["messaging.batch.message_count"] == 30
    records = await read(rig.kafka, topic, 30)
    assert [decode(r.value).event_id for r in records] == [
        e.event_id for events, _ in written for e in events
    ]
    carried = [parse_traceparent(dict(r.headers)["traceparent"]) for r in records]
    assert carried == [w for w in writers for _ in range(10)]
    assert all(dict(r.headers)["content-type"] == b"application/json" for r in records)

    # One request's rows: the round is a step of its trace, and the messages are its children.
    events, writer = await write(5)
    exporter.clear()
    assert (await relay.send_round()).sent == 5
    [span] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert span.parent is not None and format(span.parent.span_id, "016x") == writer[1]
    own = (writer[0], format(span.context.span_id, "016x"))
    keys = {e.subject.encode() for e in events}
    later = [r for r in await read(rig.kafka, topic, 35) if r.key in keys][30:]
    assert [decode(r.value).event_id for r in later] == [e.event_id for e in events]
    assert {parse_traceparent(dict(r.headers)["traceparent"]) for r in later} == {own}


async def test_a_rolled_back_transaction_hands_nothing_over(rig: Rig) -> None:
    with pytest.raises(RuntimeError):
        async with make_sessionmaker(rig.engine).begin() as session:
            await rig.outbox.add(session, "never.sent", ingested("relay-test"))
            raise RuntimeError("the use case failed")
    assert len(rig.outbox.queue) == 0
    assert await rig.rows(rig.outbox.table) == []


async def test_rows_the_relay_was_not_handed_are_found_by_polling(rig: Rig) -> None:
    topic = await new_topic(rig.kafka)
    async with rig.relay(poll_interval_s=0.2, poll_grace_s=0.5):
        row_id = await rig.insert_behind_its_back(topic, b"k", b'{"from": "another instance"}')
        assert row_id not in rig.outbox.queue
        (record,) = await read(rig.kafka, topic, 1)
        assert record.value == b'{"from": "another instance"}'


async def test_an_event_over_the_brokers_limit_is_set_aside_and_the_next_one_goes(
    rig: Rig,
) -> None:
    # Written before the size check existed, or under a larger limit: it can never be sent.
    big = ingested("tinh-a", body="<p>" + "ệ" * (MAX_MESSAGE_BYTES // 3 + 1000) + "</p>")
    big_id = await rig.insert_behind_its_back(
        ARTICLE_INGESTED.name,
        big.subject.encode(),
        big.model_dump_json().encode(),
        fair_key="tinh-a",
    )
    other = ingested("bo-b")
    await rig.commit((ARTICLE_INGESTED.name, other), fair_key="bo-b")

    async with rig.relay(poll_interval_s=0.2):
        (sent,) = await read(rig.kafka, ARTICLE_INGESTED.name, 1, keys={other.subject.encode()})
        assert decode(sent.value).event_id == other.event_id
        notice = await notice_of(rig.kafka, big.subject.encode())
        await rig.emptied()

    (dead,) = await rig.rows(rig.outbox.dead)
    assert dead.id == big_id
    assert dead.error_type == "too_large"
    assert f"over the broker's limit of {MAX_MESSAGE_BYTES:,} bytes" in dead.reason
    assert dead.value == big.model_dump_json().encode()  # kept whole, for an operator
    letter = notice
    assert letter.subject == f"outbox/relay-test/{big_id}"
    assert letter.data.source == "tinh-a"
    assert letter.data.original_topic == ARTICLE_INGESTED.name
    assert letter.data.original_partition == -1  # never on the topic: nothing to redrive
    assert letter.data.original_value_b64 == ""
    assert "over the broker's limit" in letter.data.reason
    assert "outbox_dead" in letter.data.reason


async def test_a_row_the_broker_refuses_for_good_is_set_aside_and_the_rows_behind_it_go_on(
    rig: Rig,
) -> None:
    topic = await new_topic(rig.kafka, config={"max.message.bytes": "20000"})
    refused = await rig.insert_behind_its_back(topic, b"a", OVER_20_KB)
    same_key = await rig.insert_behind_its_back(topic, b"a", b"after, same key")
    other_key = await rig.insert_behind_its_back(topic, b"b", b"after, other key")

    async with rig.relay(poll_interval_s=0.2):
        records = await read(rig.kafka, topic, 2)
        await rig.emptied()
    assert sorted(r.value for r in records) == [b"after, other key", b"after, same key"]
    (dead,) = await rig.rows(rig.outbox.dead)
    assert (dead.id, dead.error_type) == (refused, "refused")
    assert "MessageSizeTooLarge" in dead.reason
    assert same_key > refused and other_key > refused  # they were behind it


async def test_rows_refused_with_a_row_over_the_topics_limit_go_on_in_their_keys_order(
    rig: Rig,
) -> None:
    # The broker refuses the whole record batch the oversized row travels in.
    topic = await new_topic(rig.kafka, config={"max.message.bytes": "20000"})
    for value in (b"a: first", OVER_20_KB, b"a: second", b"a: third"):
        await rig.insert_behind_its_back(topic, b"a", value)
    await rig.insert_behind_its_back(topic, b"b", b"b: only")

    async with rig.relay(poll_interval_s=0.2):
        records = await read(rig.kafka, topic, 4)
        await rig.emptied()
    assert [r.value for r in records if r.key == b"a"] == [b"a: first", b"a: second", b"a: third"]
    assert [r.value for r in records if r.key == b"b"] == [b"b: only"]
    (dead,) = await rig.rows(rig.outbox.dead)
    assert dead.value == OVER_20_KB


async def test_the_bulk_lane_waits_while_the_pipeline_holds_a_queue_and_news_does_not(
    rig: Rig,
) -> None:
    topic = await new_topic(rig.kafka, partitions=3)
    group = f"relay-test-downstream-{uuid.uuid4().hex[:6]}"
    downstream = AIOKafkaConsumer(**rig.kafka, group_id=group, enable_auto_commit=False)
    await downstream.start()
    partitions = [TopicPartition(topic, p) for p in range(3)]
    downstream.assign(partitions)

    async def drain() -> None:  # the downstream service catches up
        ends = await downstream.end_offsets(partitions)
        await downstream.commit(dict(ends))

    await drain()
    window = 5
    gate = PipelineGate(
        rig.kafka, [Hop(group, topic)], AdmissionWindow(min_window=window), interval_s=0.2
    )
    measuring = asyncio.create_task(gate.run())
    try:
        backfill = [ingested("tinh-a") for _ in range(40)]
        await rig.commit(*((topic, e) for e in backfill), lane=Lane.BULK, fair_key="tinh-a")
        news = ingested("bo-b")
        await rig.commit((topic, news), fair_key="bo-b")
        backfill_keys = {e.subject.encode() for e in backfill}

        async with rig.relay(admission=gate, poll_interval_s=3600):
            await read(rig.kafka, topic, 1, keys={news.subject.encode()})
            # The gate sees the backfill queueing downstream (nothing drains)...
            for _ in range(600):
                if gate.window.in_flight >= window:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the gate never saw the backfill downstream")
            # ...and later news still goes at once, while the backfill waits: by the time it
            # arrived, at most a window or two (measurement races) of the backfill went.
            later = ingested("bo-b")
            await rig.commit((topic, later), fair_key="bo-b")
            await read(rig.kafka, topic, 1, keys={later.subject.encode()})
            early = await read_now(rig.kafka, topic, backfill_keys)
            assert window <= len(early) <= 3 * window, len(early)

            # The pipeline drains: the backfill follows, all of it.
            while len(await read_now(rig.kafka, topic, backfill_keys)) < len(backfill):
                await drain()
                await asyncio.sleep(0.3)
    finally:
        measuring.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await measuring
        await downstream.stop()


async def notice_of(kafka: dict[str, Any], original_key: bytes) -> DeadLetterEvent:
    """The dead-letter notice of the set-aside row with ``original_key`` (the topic is shared
    with earlier runs, whose rows had the same ids)."""
    wanted = base64.b64encode(original_key).decode()
    for _ in range(120):
        for record in await read_now(kafka, ARTICLE_INGESTED.dead_letter_topic, None):
            letter = decode(record.value)
            if isinstance(letter, DeadLetterEvent) and letter.data.original_key_b64 == wanted:
                return letter
        await asyncio.sleep(0.5)
    raise AssertionError("no dead-letter notice")


async def read_now(kafka: dict[str, Any], topic: str, keys: set[bytes] | None) -> list[Any]:
    """Records of ``topic`` (with one of ``keys``), as far as the topic goes now."""
    consumer = AIOKafkaConsumer(
        topic, **kafka, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[Any] = []
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        for tp in ends:
            consumer.seek(tp, 0)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                found += [r for r in records if keys is None or r.key in keys]
    finally:
        await consumer.stop()
    return found


async def test_two_relays_on_one_outbox_send_each_row_once(rig: Rig) -> None:
    """Another instance's relay polls the same table with no grace while this one is handed
    every row: they race for the same rows, and the row lock lets each go out once."""
    topic = await new_topic(rig.kafka, partitions=3)
    other = Outbox(rig.outbox.table, rig.outbox.inbox)  # the other instance's (empty) queue
    events = [ingested("relay-test") for _ in range(300)]
    async with rig.relay(poll_interval_s=0.05, poll_grace_s=0, batch=20):
        relay_b = OutboxRelay(
            other,
            rig.engine,
            rig.broker,
            producer="relay-b",
            poll_interval_s=0.05,
            poll_grace_s=0,
            batch=20,
        )
        task_b = asyncio.create_task(relay_b.run())
        try:
            for start in range(0, len(events), 10):
                await rig.commit(*((topic, e) for e in events[start : start + 10]))
            records = await read(rig.kafka, topic, len(events))
            await rig.emptied()
        finally:
            assert await relay_b.stop(timeout_s=30)
            await task_b
    seen = [decode(r.value).event_id for r in records]
    assert sorted(seen) == sorted(e.event_id for e in events)  # every one, none twice
    assert len(await read(rig.kafka, topic, len(events))) == len(events)  # and nothing after


async def test_a_stopping_relay_sends_what_it_was_handed_then_stops_between_rounds(
    rig: Rig,
) -> None:
    topic = await new_topic(rig.kafka)
    relay = OutboxRelay(rig.outbox, rig.engine, rig.broker, poll_interval_s=3600, batch=7)
    task = asyncio.create_task(relay.run())
    events = [ingested("relay-test") for _ in range(40)]
    await rig.commit(*((topic, e) for e in events))  # handed over: 6 rounds of 7
    assert await relay.stop(timeout_s=30)
    await asyncio.wait_for(task, timeout=5)  # it ended on its own
    records = await read(rig.kafka, topic, len(events))
    assert [decode(r.value).event_id for r in records] == [e.event_id for e in events]
    assert await rig.rows(rig.outbox.table) == []
    # Stopped: what is committed now waits in the table for the next relay.
    await rig.commit((topic, ingested("relay-test")))
    assert len(await rig.rows(rig.outbox.table)) == 1


async def test_two_relays_taking_the_same_rows_at_once_send_them_once(rig: Rig) -> None:
    topic = await new_topic(rig.kafka)
    for _ in range(30):  # rows neither relay was handed (another instance's, before a restart)
        await rig.insert_behind_its_back(topic, b"k", b'{"n": 1}')
    relays = [
        OutboxRelay(Outbox(rig.outbox.table, rig.outbox.inbox), rig.engine, rig.broker)
        for _ in range(2)
    ]
    for relay in relays:
        assert await relay.poll(grace=False) == 30  # both queued all 30
    first, second = await asyncio.gather(*(relay.send_round() for relay in relays))
    # One locked the rows and sent them; the other waited for its commit and found them gone.
    assert first.sent + second.sent == 30
    assert first.gone + second.gone == 30
    assert len(await read(rig.kafka, topic, 30)) == 30
    assert await rig.rows(rig.outbox.table) == []
