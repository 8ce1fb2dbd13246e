"""Repair and replay, the Kafka side: offsets, dead-letter records, re-production, commits.

Everything that decides lives in ``ops`` (pure); this module only reads and writes Kafka.
``kafka`` is always a client's address and credentials (the keyword arguments of aiokafka's
clients): the local stack's operator, or what the environment gives for another cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from kafka import KafkaAdminClient

from portal_contracts.codec import DecodeError, decode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_launcher.ops import (
    DeadLetterRecord,
    Mark,
    PartitionLag,
    RedrivePlan,
    decode_mark,
    encode_mark,
    failed_groups,
    lag_rows,
    plan_redrive,
    redrive_headers,
)

CLIENT_ID = "portal-ops"


async def partitions(kafka: Mapping[str, Any], topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of those of ``topics`` that exist."""
    names = sorted(set(topics))
    if not names:
        return []
    admin = AIOKafkaAdminClient(**kafka, client_id=CLIENT_ID)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], int(p["partition"]))
        for t in described
        if not t.get("error_code")
        for p in sorted(t.get("partitions", []), key=lambda p: int(p["partition"]))
    ]


async def _offsets(
    kafka: Mapping[str, Any], topics: Iterable[str]
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """Beginning and end offsets of every partition of ``topics``."""
    tps = await partitions(kafka, topics)
    if not tps:
        return {}, {}
    consumer = AIOKafkaConsumer(**kafka, client_id=CLIENT_ID, group_id=None)
    await consumer.start()
    try:
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return (
        {(tp.topic, tp.partition): o for tp, o in begins.items()},
        {(tp.topic, tp.partition): o for tp, o in ends.items()},
    )


async def consumer_lag(kafka: Mapping[str, Any], group: str | None = None) -> list[PartitionLag]:
    """Lag of ``group`` (every consumer group if None) on every topic it has committed on."""
    admin = AIOKafkaAdminClient(**kafka, client_id=CLIENT_ID)
    await admin.start()
    try:
        if group is None:
            groups = sorted({g[0] for g in await admin.list_consumer_groups()})
        else:
            groups = [group]
        committed: dict[str, dict[tuple[str, int], int | None]] = {}
        for g in groups:
            offsets = await admin.list_consumer_group_offsets(g)
            committed[g] = {
                (tp.topic, tp.partition): (om.offset if om.offset >= 0 else None)
                for tp, om in offsets.items()
            }
    finally:
        await admin.close()
    begins, ends = await _offsets(kafka, {t for c in committed.values() for t, _ in c})
    rows: list[PartitionLag] = []
    for g, c in committed.items():
        rows += lag_rows(g, c, begins, ends)
    return rows


@dataclass(frozen=True)
class Assigned:
    """Partitions a consumer group gave one member (a consumer of a service process)."""

    group: str
    topic: str
    partitions: tuple[int, ...]
    state: str = "Stable"  # the group's; another while it rebalances


def group_assignments(kafka: Mapping[str, Any]) -> dict[str, list[Assigned]]:
    """Every consumer group's current assignment, by member client id (a service process names
    its consumers by its instance id: ``SERVICE_INSTANCE_ID``). Read with kafka-python, whose
    DescribeGroups speaks the versions of Kafka 4 (aiokafka's fails to decode them)."""
    admin = KafkaAdminClient(**kafka, client_id=CLIENT_ID)
    try:
        groups = [g["group_id"] for g in admin.list_groups()]
        described = admin.describe_groups(groups) if groups else {}
    finally:
        admin.close()
    out: dict[str, list[Assigned]] = {}
    for group, info in described.items():
        for member in info.get("members") or []:
            assignment = member.get("member_assignment") or {}
            for item in assignment.get("assigned_partitions") or []:
                out.setdefault(member["client_id"], []).append(
                    Assigned(
                        group,
                        item["topic"],
                        tuple(sorted(item["partitions"])),
                        str(info.get("group_state") or ""),
                    )
                )
    return out


def describe_assignment(assigned: Iterable[Assigned]) -> str:
    """``group: topic[0,1,2]`` per group and topic, for `portal stack status`."""
    return "; ".join(
        f"{a.group}: {a.topic}[{','.join(map(str, a.partitions))}]"
        for a in sorted(assigned, key=lambda a: (a.group, a.topic))
        if a.partitions
    )


@dataclass(frozen=True)
class DeadLetters:
    dlq: str
    records: list[DeadLetterRecord]
    ends: dict[int, int]


async def read_dead_letters(
    kafka: Mapping[str, Any], dlq: str, stall_timeout_s: float = 30.0
) -> DeadLetters:
    """Every record of ``dlq`` up to its end offsets of now (no group: nothing committed)."""
    begins, ends = await _offsets(kafka, [dlq])
    tps = [TopicPartition(dlq, p) for (_, p) in ends]
    records: list[DeadLetterRecord] = []
    pending = {tp for tp in tps if ends[(dlq, tp.partition)] > begins[(dlq, tp.partition)]}
    if not pending:
        return DeadLetters(dlq, records, {p: o for (_, p), o in ends.items()})
    consumer = AIOKafkaConsumer(
        **kafka,
        client_id=CLIENT_ID,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES * 2,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500, max_records=500)
            for tp, batch in batches.items():
                for record in batch:
                    if record.offset >= ends[(dlq, tp.partition)]:
                        continue
                    records.append(
                        DeadLetterRecord(tp.partition, record.offset, _letter(record.value))
                    )
            if batches:
                last_progress = loop.time()
            for tp in list(pending):
                if await consumer.position(tp) >= ends[(dlq, tp.partition)]:
                    pending.discard(tp)
            if pending and loop.time() - last_progress > stall_timeout_s:
                raise TimeoutError(f"reading {dlq} made no progress for {stall_timeout_s:.0f}s")
    finally:
        await consumer.stop()
    return DeadLetters(dlq, records, {p: o for (_, p), o in ends.items()})


def _letter(value: bytes | None) -> DeadLetter | None:
    if value is None:
        return None
    try:
        event = decode(value, expected=DeadLetterEvent)
    except DecodeError:
        return None
    assert isinstance(event, DeadLetterEvent)
    return event.data


async def read_marks(kafka: Mapping[str, Any], group_id: str, dlq: str) -> dict[int, Mark]:
    admin = AIOKafkaAdminClient(**kafka, client_id=CLIENT_ID)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {
        tp.partition: decode_mark(om.offset, om.metadata)
        for tp, om in offsets.items()
        if tp.topic == dlq and om.offset >= 0
    }


async def redrive(
    kafka: Mapping[str, Any],
    dlq: str,
    *,
    group: str | None = None,
    reason_contains: str | None = None,
    dry_run: bool = False,
) -> list[RedrivePlan]:
    """Re-produce the selected dead letters of ``dlq`` to their original topics, once.

    Per failed consumer group: plan from the remembered progress, send (acks=all, idempotent
    producer), then commit the new progress. A crash between the two sends some again on the
    next run: at least once, which the consumers absorb (inbox by event id, or by revision).
    """
    letters = await read_dead_letters(kafka, dlq)
    groups = [group] if group is not None else failed_groups(letters.records)
    plans = [
        plan_redrive(
            dlq,
            letters.records,
            letters.ends,
            await read_marks(kafka, _group_id(dlq, g), dlq),
            g,
            reason_contains,
        )
        for g in groups
    ]
    if dry_run:
        return plans
    producer = AIOKafkaProducer(
        **kafka,
        client_id=CLIENT_ID,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,
    )
    await producer.start()
    try:
        for plan in plans:
            for rec in plan.send:
                letter = rec.letter
                assert letter is not None
                await producer.send_and_wait(
                    letter.original_topic,
                    letter.original_value(),
                    key=letter.original_key(),
                    headers=redrive_headers(rec, dlq),
                )
            await _commit(kafka, plan)
    finally:
        await producer.stop()
    return plans


def _group_id(dlq: str, failed_group: str) -> str:
    return RedrivePlan(dlq, failed_group).group_id


async def _commit(kafka: Mapping[str, Any], plan: RedrivePlan) -> None:
    if not plan.marks:
        return
    consumer = AIOKafkaConsumer(
        **kafka,
        client_id=CLIENT_ID,
        group_id=plan.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = {p: TopicPartition(plan.dlq, p) for p in plan.marks}
        consumer.assign(list(tps.values()))
        await consumer.commit(
            {tps[p]: (mark.next_offset, encode_mark(mark)) for p, mark in plan.marks.items()}
        )
    finally:
        await consumer.stop()
