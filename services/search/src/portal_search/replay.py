"""Replay of the compacted ``article.published`` log, for rebuilding the index.

A consumer of its own: every partition assigned by hand, read from the beginning up to the end
offsets taken when the replay starts, no consumer group and no committed offsets (the live
consumer's group is never touched). What arrives after those offsets is the live consumer's job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.codec import DecodeError, decode
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_runtime.logs import get_logger

log = get_logger(__name__)

BatchHandler = Callable[[list[ArticlePublishedEvent]], Awaitable[None]]


@dataclass(frozen=True)
class ReplayStats:
    messages: int
    events: int
    skipped: int


class ReplayStalled(RuntimeError):
    """The replay made no progress for too long (broker gone, partition unavailable)."""


async def replay_published(
    kafka: Mapping[str, Any],
    handle: BatchHandler,
    *,
    batch_size: int = 500,
    stall_timeout_s: float = 60.0,
    client_id: str = "search-reindex",
) -> ReplayStats:
    """Feed every ``article.published`` event up to the current end offsets to ``handle``.

    Messages that are not valid events (already dead-lettered by the live consumer) are skipped.
    ``kafka``: the service's client options (``kafka_security.client_options``).
    """
    partitions = await _partitions(kafka, ARTICLE_PUBLISHED.name, client_id)
    tps = [TopicPartition(ARTICLE_PUBLISHED.name, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        **kafka,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
    )
    await consumer.start()
    messages = events = skipped = 0
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > begin[tp]}
        log.info(
            "replay_started",
            topic=ARTICLE_PUBLISHED.name,
            messages_at_most=sum(end[tp] - begin[tp] for tp in tps),
        )
        last_progress = time.monotonic()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=batch_size)
            batch: list[ArticlePublishedEvent] = []
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue  # after the snapshot: the live consumer writes it
                    messages += 1
                    try:
                        event = decode(record.value, expected=ArticlePublishedEvent)
                    except DecodeError:
                        skipped += 1
                        continue
                    assert isinstance(event, ArticlePublishedEvent)
                    batch.append(event)
            if batch:
                await handle(batch)
                events += len(batch)
            if batches:
                last_progress = time.monotonic()
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
            if pending and time.monotonic() - last_progress > stall_timeout_s:
                raise ReplayStalled(
                    f"no progress for {stall_timeout_s:.0f}s on "
                    f"{sorted(tp.partition for tp in pending)}"
                )
    finally:
        await consumer.stop()
    log.info("replay_done", messages=messages, events=events, skipped=skipped)
    return ReplayStats(messages=messages, events=events, skipped=skipped)


async def _partitions(kafka: Mapping[str, Any], topic: str, client_id: str) -> list[int]:
    admin = AIOKafkaAdminClient(**kafka, client_id=client_id)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(int(p["partition"]) for p in described.get("partitions", []))
    if described.get("error_code") or not partitions:
        raise RuntimeError(f"topic {topic} not found (error {described.get('error_code')})")
    return partitions
