"""Which lane an item takes (pure): backfills and bursts go in the bulk lane, news does not."""

from __future__ import annotations

from portal_ingest.fairness import BurstDetector
from portal_runtime.relay_queue import Lane


def test_news_at_a_normal_pace_takes_the_normal_lane() -> None:
    lanes = BurstDetector(threshold=5, window_s=10)
    assert [lanes.lane("a", t * 3.0) for t in range(20)] == [Lane.NORMAL] * 20


def test_a_marked_backfill_takes_the_bulk_lane_from_its_first_item() -> None:
    lanes = BurstDetector(threshold=5, window_s=10)
    assert lanes.lane("a", 0.0, backfill=True) is Lane.BULK
    assert lanes.lane("a", 100.0) is Lane.NORMAL  # the same agency's news is news


def test_an_unmarked_burst_is_detected_and_ends_when_the_pace_falls() -> None:
    lanes = BurstDetector(threshold=5, window_s=10)
    burst = [lanes.lane("a", i * 0.1) for i in range(12)]
    assert burst[:5] == [Lane.NORMAL] * 5
    assert burst[6:] == [Lane.BULK] * 6
    assert lanes.bursting(1.2) == {"a"}

    # Still bursting while more than half the threshold arrived within the window...
    assert lanes.lane("a", 5.0) is Lane.BULK
    # ...and back to normal once the pace fell to half of it.
    assert lanes.lane("a", 30.0) is Lane.NORMAL
    assert lanes.bursting(30.0) == set()


def test_one_agency_bursting_leaves_the_others_in_the_normal_lane() -> None:
    lanes = BurstDetector(threshold=5, window_s=10)
    for i in range(50):
        lanes.lane("province", i * 0.01)
    assert lanes.lane("province", 0.6) is Lane.BULK
    assert lanes.lane("ministry", 0.6) is Lane.NORMAL
