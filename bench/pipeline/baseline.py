"""The baseline: the same number of messages of the same size through bare Kafka hops (consume,
produce, commit; no processing), signed in as the services are. What the pipeline's hops would
cost if they did no work."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.pipeline.measure import steady_rate
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.settings import StackSettings


async def baseline(
    settings: StackSettings, n: int, size: int, hops: int = 4
) -> tuple[float, list[float]]:
    """Messages per second (the steady slope of arrivals) and each message's latency in ms."""
    run = uuid.uuid4().hex[:8]
    topics = [f"bench.{run}.hop{i}" for i in range(hops + 1)]
    # The baseline signs in like the services do (SASL on the internal listener).
    common = admin_client_options(settings)
    admin = AIOKafkaAdminClient(**common)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
    await admin.close()

    async def relay(src: str, dst: str) -> None:
        consumer = AIOKafkaConsumer(
            src,
            group_id=f"relay-{src}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **common,
        )
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **common)
        await consumer.start()
        await producer.start()
        try:
            seen = 0
            while seen < n:
                batches = await consumer.getmany(timeout_ms=500)
                futures = []
                for records in batches.values():
                    for rec in records:
                        futures.append(await producer.send(dst, rec.value, key=rec.key))
                        seen += 1
                await asyncio.gather(*futures)
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()

    arrived: dict[bytes, float] = {}

    async def sink() -> None:
        consumer = AIOKafkaConsumer(
            topics[-1], group_id=f"sink-{run}", auto_offset_reset="earliest", **common
        )
        await consumer.start()
        try:
            while len(arrived) < n:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for rec in records:
                        arrived.setdefault(rec.key or b"", time.time())
        finally:
            await consumer.stop()

    tasks = [asyncio.create_task(relay(topics[i], topics[i + 1])) for i in range(hops)]
    tasks.append(asyncio.create_task(sink()))
    await asyncio.sleep(2.0)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **common)
    await producer.start()
    sent: dict[bytes, float] = {}
    payload = b"x" * size
    futures = []
    for i in range(n):
        key = f"{run}-{i}".encode()
        sent[key] = time.time()
        futures.append(await producer.send(topics[0], payload, key=key))
    await asyncio.gather(*futures)
    await producer.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120 + n)
    return steady_rate(arrived.values()), [(arrived[k] - sent[k]) * 1000 for k in arrived]
