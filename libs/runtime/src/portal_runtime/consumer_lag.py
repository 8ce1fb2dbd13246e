"""A consumer's lag, told from its own fetches and commits rather than asked of the broker.

The lag gauges need, per partition, the end offset and the group's committed offset. A fetch
brings the end offset back with it (aiokafka's ``highwater``), and the consumer knows its
group's commit: where the first record it was given since the assignment stood, then each
offset it committed. Asking the broker for both (``LIST_OFFSETS``, ``OFFSET_FETCH``) every few
seconds per group was a large share of an idle broker's requests; it is now asked only about
partitions this does not cover (see ``metrics.consumer_lag``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


class CommittedOffsets:
    """Per assigned partition, the group's committed offset as one consumer knows it."""

    def __init__(self) -> None:
        self._offsets: dict[TopicPartition, int] = {}

    def given(self, fetched: Mapping[TopicPartition, list[Any]]) -> None:
        """Note where the group's commit stood on partitions the consumer is given records of
        for the first time since their assignment (the first record's offset)."""
        for tp, records in fetched.items():
            if records and tp not in self._offsets:
                self._offsets[tp] = records[0].offset

    def update(self, committed: Mapping[TopicPartition, int]) -> None:
        self._offsets.update(committed)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions given up: their next owner commits from now on."""
        for tp in partitions:
            self._offsets.pop(tp, None)

    def clear(self) -> None:
        self._offsets.clear()

    def known_lag(
        self, consumer: AIOKafkaConsumer, fetch_max_wait_ms: float
    ) -> dict[TopicPartition, int]:
        """The lag (end offset minus the group's committed offset) of each assigned partition
        that can be told without asking the broker: the end offset the last fetch of the
        partition brought back, if that fetch is recent. A fetch returns within
        ``fetch_max_wait_ms`` even when idle, so a partition is only missing here while it is
        not being fetched (records given to the handler wait to be processed), or before its
        first fetch: then the caller asks the broker."""
        fresh_ms = fetch_max_wait_ms + 2_000
        now_ms = time.time() * 1000
        known: dict[TopicPartition, int] = {}
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            fetched_at = consumer.last_poll_timestamp(tp)
            if end is None or fetched_at is None or now_ms - fetched_at > fresh_ms:
                continue
            committed = self._offsets.get(tp)
            if committed is None:
                committed = _position_before_any_record(consumer, tp)
                if committed is None:
                    continue
            known[tp] = max(0, int(end) - committed)
        return known


def _position_before_any_record(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """Where a partition's group commit stands when the consumer has given no record of it
    since its assignment: its position (the committed offset, or the earliest one before the
    group's first commit, as the fetcher reset it). None while it is being reset."""
    # aiokafka's partition state, read without a round trip (``position()`` would wait out
    # a reset in progress).
    assignment = consumer._subscription.subscription.assignment
    state = assignment.state_value(tp) if assignment is not None else None
    if state is None or not state.has_valid_position:
        return None
    return int(state.position)
