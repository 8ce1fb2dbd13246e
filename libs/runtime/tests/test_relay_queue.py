"""The relay's scheduling decisions (pure): fairness between sources, the bulk lane after the
normal one, and each key's rows never overtaking each other."""

from __future__ import annotations

from portal_runtime.relay_queue import Entry, Lane, RelayQueue


def entry(i: int, key: str, source: str, lane: Lane = Lane.NORMAL) -> Entry:
    return Entry(i, key.encode(), lane, source)


def ids(entries: list[Entry]) -> list[int]:
    return [e.id for e in entries]


def test_sources_take_turns_so_one_burst_does_not_hide_another_sources_row() -> None:
    queue = RelayQueue()
    for i in range(1, 101):
        queue.add(entry(i, f"a{i}", "agency-a"))
    queue.add(entry(101, "b1", "agency-b"))

    batch = queue.take(max_rows=4, bulk_budget=0, now=0)

    assert ids(batch) == [1, 101, 2, 3]


def test_bulk_rows_wait_for_the_normal_lane_and_for_their_budget() -> None:
    queue = RelayQueue()
    for i in range(1, 11):
        queue.add(entry(i, f"a{i}", "province", Lane.BULK))
    queue.add(entry(11, "b1", "ministry"))

    first = queue.take(max_rows=5, bulk_budget=2, now=0)
    assert ids(first) == [11, 1, 2]
    queue.forget(ids(first))

    assert queue.take(max_rows=5, bulk_budget=0, now=0) == []
    assert ids(queue.take(max_rows=5, bulk_budget=3, now=0)) == [3, 4, 5]
    assert queue.waiting() == {Lane.NORMAL: 0, Lane.BULK: 5}


def test_bulk_sources_share_the_bulk_budget() -> None:
    queue = RelayQueue()
    for i in range(1, 7):
        queue.add(entry(i, f"a{i}", "a", Lane.BULK))
    for i in range(7, 10):
        queue.add(entry(i, f"b{i}", "b", Lane.BULK))

    assert ids(queue.take(max_rows=10, bulk_budget=4, now=0)) == [1, 7, 2, 8]


def test_a_normal_row_takes_the_earlier_bulk_rows_of_its_key_along_in_order() -> None:
    queue = RelayQueue()
    queue.add(entry(1, "x", "a", Lane.BULK))
    queue.add(entry(2, "y", "a", Lane.BULK))
    queue.add(entry(3, "x", "a", Lane.BULK))
    queue.add(entry(4, "x", "a", Lane.NORMAL))  # an urgent update of x during a backfill

    batch = queue.take(max_rows=10, bulk_budget=0, now=0)

    assert ids(batch) == [1, 3, 4]  # x's rows, in order; y stays in the bulk lane
    assert queue.waiting() == {Lane.NORMAL: 0, Lane.BULK: 1}


def test_a_bulk_row_of_a_key_with_a_normal_row_waiting_follows_it() -> None:
    queue = RelayQueue()
    queue.add(entry(1, "x", "a", Lane.NORMAL))
    queue.add(entry(2, "x", "a", Lane.BULK))

    assert ids(queue.take(max_rows=10, bulk_budget=0, now=0)) == [1, 2]


def test_rows_found_later_by_polling_go_in_id_order() -> None:
    queue = RelayQueue()
    queue.add(entry(9, "x", "a"))
    queue.add(entry(5, "x", "a"))  # an older row of the same article, found by the poller

    assert ids(queue.take(max_rows=10, bulk_budget=0, now=0)) == [5, 9]


def test_a_failed_row_holds_back_the_later_rows_of_its_key_but_not_the_others() -> None:
    queue = RelayQueue(retry_backoff_s=1.0)
    queue.add(entry(1, "x", "a"))
    queue.add(entry(2, "y", "a"))
    first = queue.take(max_rows=1, bulk_budget=0, now=0)
    assert ids(first) == [1]
    queue.add(entry(3, "x", "a"))
    queue.retry([1], now=0)

    second = queue.take(max_rows=10, bulk_budget=0, now=0.5)
    assert ids(second) == [2]  # 1 waits for its retry, and 3 (same key) waits behind it
    queue.forget([2])
    assert queue.next_retry_at() == 1.0

    third = queue.take(max_rows=10, bulk_budget=0, now=1.0)
    assert ids(third) == [1, 3]


def test_a_retry_waits_longer_each_time() -> None:
    queue = RelayQueue(retry_backoff_s=0.5, max_backoff_s=2.0)
    queue.add(entry(1, "x", "a"))
    waits = []
    now = 0.0
    for _ in range(4):
        assert ids(queue.take(10, 0, now)) == [1]
        queue.retry([1], now)
        retry_at = queue.next_retry_at()
        assert retry_at is not None
        waits.append(retry_at - now)
        now = retry_at
    assert waits == [0.5, 1.0, 2.0, 2.0]


def test_released_rows_keep_their_place_without_a_backoff() -> None:
    queue = RelayQueue()
    queue.add(entry(1, "x", "a"))
    queue.add(entry(2, "x", "a"))
    assert ids(queue.take(1, 0, 0)) == [1]
    queue.release([1])

    assert ids(queue.take(10, 0, 0)) == [1, 2]


def test_known_rows_are_not_queued_twice_and_a_full_queue_refuses() -> None:
    queue = RelayQueue(capacity=2)
    assert queue.add(entry(1, "x", "a"))
    assert not queue.add(entry(1, "x", "a"))  # handed over and found by the poller
    assert queue.add(entry(2, "y", "a"))
    assert queue.full
    assert not queue.add(entry(3, "z", "a"))

    queue.forget(ids(queue.take(10, 0, 0)))
    assert len(queue) == 0
    assert queue.add(entry(3, "z", "a"))


def test_forgetting_the_last_row_of_a_key_lets_its_next_row_choose_its_lane_again() -> None:
    queue = RelayQueue()
    queue.add(entry(1, "x", "a", Lane.BULK))
    queue.forget(ids(queue.take(10, 1, 0)))
    queue.add(entry(2, "x", "a", Lane.NORMAL))

    assert ids(queue.take(10, 0, 0)) == [2]


def test_written_values_are_kept_within_their_byte_budget_and_freed_when_sent() -> None:
    queue = RelayQueue(max_value_bytes=10)
    row = {"topic": "t", "key": b"a", "value": b"123456", "headers": {}}
    first = Entry(1, b"a", Lane.NORMAL, "s", written=row)
    second = Entry(2, b"a", Lane.NORMAL, "s", written=dict(row))  # over the budget: read back
    third = Entry(3, b"c", Lane.NORMAL, "s")  # found by polling: the table has it
    for e in (first, second, third):
        assert queue.add(e)
    assert (first.written, second.written, third.written) == (row, None, None)
    assert queue.value_bytes == 6

    queue.forget(ids(queue.take(max_rows=1, bulk_budget=0, now=0)))
    assert queue.value_bytes == 0
    assert queue.add(Entry(4, b"d", Lane.NORMAL, "s", written={**row, "value": b"1234567890"}))
    assert queue.value_bytes == 10
