"""The lag a consumer tells from its own fetches and commits (pure logic, no broker)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from portal_runtime.consumer_lag import CommittedOffsets

A = TopicPartition("article.normalized", 0)
B = TopicPartition("article.normalized", 1)


class FetchedState:
    """What ``known_lag`` reads of an aiokafka consumer: its assignment, each partition's end
    offset from the last fetch and when that fetch came back."""

    def __init__(self, ends: dict[TopicPartition, int], fetched_ms_ago: float = 10) -> None:
        self.ends = ends
        self.fetched_at = time.time() * 1000 - fetched_ms_ago

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

    def last_poll_timestamp(self, tp: TopicPartition) -> float:
        return self.fetched_at


def records(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in offsets]


def test_the_lag_runs_from_the_first_record_given_then_from_each_commit() -> None:
    offsets = CommittedOffsets()
    offsets.given({A: records(40, 41, 42), B: records(7)})
    offsets.given({A: records(43)})  # later fetches do not move where the commit stood
    consumer: Any = FetchedState({A: 50, B: 9})

    assert offsets.known_lag(consumer, 5_000) == {A: 10, B: 2}

    offsets.update({A: 44})
    assert offsets.known_lag(consumer, 5_000) == {A: 6, B: 2}


def test_a_partition_not_fetched_lately_is_left_to_the_broker() -> None:
    offsets = CommittedOffsets()
    offsets.given({A: records(3)})
    stale: Any = FetchedState({A: 10}, fetched_ms_ago=60_000)

    assert offsets.known_lag(stale, 5_000) == {}


def test_a_partition_given_up_is_forgotten() -> None:
    offsets = CommittedOffsets()
    offsets.given({A: records(3), B: records(5)})
    offsets.forget({A})
    consumer: Any = FetchedState({B: 6})

    assert offsets.known_lag(consumer, 5_000) == {B: 1}
