"""Replay of a topic from its beginning up to the end offsets of now, to rebuild a read model
(the published store, the search indexes) from the log.

A consumer of its own: every partition assigned by hand, no consumer group and no committed
offsets (the live consumer's group is never touched). What arrives after the end offsets taken
at the start is the live consumer's job. A message that is not a valid event of the expected
model (the live consumer dead-lettered it) is counted and skipped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from portal_contracts.codec import DecodeError, decode
from portal_contracts.envelope import Envelope
from portal_runtime.kafka import started
from portal_runtime.logs import get_logger

log = get_logger(__name__)

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True)
class ReplayStats:
    messages: int  # read, up to the end offsets
    events: int  # valid events handed over
    skipped: int  # not valid events of the model


class TopicMissing(RuntimeError):
    """The topic does not exist (yet): nothing to replay."""


class ReplayStalled(TimeoutError):
    """The replay made no progress for too long (broker gone, partition unavailable)."""


async def partitions_of(kafka: Mapping[str, Any], topic: str, client_id: str) -> list[int]:
    admin = await started(AIOKafkaAdminClient(**kafka, client_id=client_id))
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(int(p["partition"]) for p in described.get("partitions", []))
    if described.get("error_code") or not partitions:
        raise TopicMissing(
            f"topic {topic} does not exist yet: nothing was published to it on this cluster, "
            "or the topic was lost; create it (portal stack up) and retry"
        )
    return partitions


async def replay(
    kafka: Mapping[str, Any],
    topic: str,
    model: type[E],
    handle: Callable[[list[E]], Awaitable[None]],
    *,
    client_id: str,
    batch_size: int = 500,
    stall_timeout_s: float = 60.0,
) -> ReplayStats:
    """Hand every valid event of ``topic`` up to the end offsets of now to ``handle``, in
    batches of at most ``batch_size`` (in log order within each partition).
    ``kafka``: the service's client options (``kafka_security.client_options``)."""
    tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic, client_id)]
    consumer = await started(
        AIOKafkaConsumer(
            **kafka,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
        )
    )
    messages = events = skipped = 0
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > begin[tp]}
        log.info(
            "replay_started", topic=topic, messages_at_most=sum(end[t] - begin[t] for t in tps)
        )
        last_progress = time.monotonic()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=batch_size)
            batch: list[E] = []
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue  # after the snapshot: the live consumer has it
                    messages += 1
                    try:
                        event = decode(record.value, expected=model)
                    except DecodeError:
                        skipped += 1
                        continue
                    assert isinstance(event, model)
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
                stuck = sorted(tp.partition for tp in pending)
                raise ReplayStalled(
                    f"replay of {topic} made no progress for {stall_timeout_s:.0f}s on {stuck}"
                )
    finally:
        await consumer.stop()
    log.info("replay_done", topic=topic, messages=messages, events=events, skipped=skipped)
    return ReplayStats(messages=messages, events=events, skipped=skipped)
