"""The rules of pull integration, without infrastructure."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_ingest.pull import domain
from portal_ingest.pull.domain import (
    Breaker,
    BreakerPolicy,
    BreakerState,
    ConnectorHealth,
    ErrorKind,
    ItemAction,
    ItemState,
    KnownItem,
    Listing,
    Outcome,
    SourceState,
)

NOW = datetime(2025, 6, 10, 3, 0, tzinfo=UTC)


# -- identity ---------------------------------------------------------------------------------


def test_canonical_url_drops_tracking_and_fragment_keeps_meaningful_query() -> None:
    assert (
        domain.canonical_url("HTTPS://Tinh.VN:443/bai/1.html?id=5&utm_source=fb&fbclid=x#top")
        == "https://tinh.vn/bai/1.html?id=5"
    )
    assert domain.canonical_url("http://tinh.vn:8080") == "http://tinh.vn:8080/"


def test_item_key_prefers_guid_then_canonical_link() -> None:
    assert domain.item_key(" guid-1 ", "https://x.vn/a") == "guid-1"
    assert domain.item_key(None, "https://x.vn/a?utm_medium=rss") == "https://x.vn/a"
    assert domain.item_key("", None) is None


def test_external_id_is_readable_when_possible_and_always_valid() -> None:
    assert domain.external_id_for("https://x.vn/a-1.html") == "feed/https://x.vn/a-1.html"
    hashed = domain.external_id_for("https://x.vn/bài viết?id=1")
    assert hashed.startswith("feed/sha256/")
    assert domain.external_id_for("https://x.vn/bài viết?id=1") == hashed


@given(st.text(min_size=1, max_size=300))
def test_external_ids_fit_the_partner_pattern(key: str) -> None:
    import re

    ext = domain.external_id_for(key)
    assert len(ext) <= 200
    assert re.match(r"^[A-Za-z0-9._:/-]+$", ext)


# -- mapping ----------------------------------------------------------------------------------


def test_categories_match_whatever_case_spacing_and_tone_placement() -> None:
    mapping = domain.merged_mapping(
        {"Thời sự": "ct-tin-tuc-hoat-dong"}, {"Xây dựng Đảng": "ct-xay-dung-dang"}
    )
    assert domain.place(["  THỜI   SỰ "], mapping, None).section == "ct-tin-tuc-hoat-dong"
    assert domain.place(["xây dựng đảng"], mapping, None).section == "ct-xay-dung-dang"
    # "hoà" and "hòa": two tone placements of one word.
    m2 = domain.merged_mapping({"Hòa bình": "ct-tin-tuc-hoat-dong"}, {})
    assert domain.place(["Hoà bình"], m2, None).section == "ct-tin-tuc-hoat-dong"


def test_connector_mapping_overrides_the_source_mapping() -> None:
    mapping = domain.merged_mapping({"Tin": "a"}, {"tin": "b"})
    assert domain.place(["Tin"], mapping, None).section == "b"


def test_unmapped_items_are_held_with_the_reason_unless_the_feed_has_a_section() -> None:
    held = domain.place(["Thể thao"], {}, None)
    assert held.held and "Thể thao" in (held.held_reason or "")
    assert domain.place([], {}, None).held
    assert domain.place(["Thể thao"], {}, "ct-tin-tuc-hoat-dong").section == "ct-tin-tuc-hoat-dong"


# -- item decisions ---------------------------------------------------------------------------


def _known(state: ItemState, fp: str = "f1", attempts: int = 0, owner: int | None = 1) -> KnownItem:
    return KnownItem(owner, fp, state, attempts)


@pytest.mark.parametrize(
    ("known", "fp", "expected"),
    [
        (None, "f1", ItemAction.NEW),
        (_known(ItemState.INGESTED), "f1", ItemAction.UNCHANGED),
        (_known(ItemState.INGESTED), "f2", ItemAction.UPDATE),
        (_known(ItemState.FAILED, attempts=1), "f1", ItemAction.RETRY),
        (_known(ItemState.FAILED, attempts=5), "f1", ItemAction.GIVE_UP),
        (_known(ItemState.FAILED, attempts=5), "f2", ItemAction.UPDATE),
        (_known(ItemState.HELD), "f1", ItemAction.RECHECK),
        (_known(ItemState.RETRACTED), "f1", ItemAction.RESTORE),
        (_known(ItemState.INGESTED, owner=2), "f2", ItemAction.OTHER_CONNECTOR),
        (_known(ItemState.INGESTED, owner=9), "f2", ItemAction.UPDATE),  # owner removed
    ],
)
def test_classify(known: KnownItem | None, fp: str, expected: ItemAction) -> None:
    got = domain.classify(
        known, connector_id=1, live_connectors=[1, 2], item_fingerprint=fp, max_attempts=5
    )
    assert got is expected


def test_fingerprint_ignores_key_order() -> None:
    assert domain.fingerprint({"a": 1, "b": [1, 2]}) == domain.fingerprint({"b": [1, 2], "a": 1})
    assert domain.fingerprint({"a": 1}) != domain.fingerprint({"a": 2})


# -- vanished items ---------------------------------------------------------------------------


def test_item_that_scrolled_out_of_a_feed_is_not_vanished() -> None:
    listing = Listing(complete=True, window_start=NOW - timedelta(days=1), windowed=True)
    assert not domain.vanished(listing, NOW - timedelta(days=2))
    assert domain.vanished(listing, NOW - timedelta(hours=3))
    assert not domain.vanished(listing, None)


def test_nothing_vanishes_from_a_broken_listing() -> None:
    listing = Listing(complete=False, window_start=NOW - timedelta(days=1), windowed=True)
    assert not domain.vanished(listing, NOW)


def test_a_plain_sitemap_lists_everything() -> None:
    assert domain.vanished(Listing(complete=True, window_start=None, windowed=False), None)


def test_retraction_needs_the_policy_and_repeated_absence() -> None:
    assert not domain.should_retract(False, 5, 2)
    assert not domain.should_retract(True, 1, 2)
    assert domain.should_retract(True, 2, 2)


# -- schedule and breaker ---------------------------------------------------------------------


def test_poll_times_are_jittered_within_bounds() -> None:
    rng = random.Random(7)
    times = {domain.next_poll_at(NOW, 300, 0.1, rng) for _ in range(200)}
    assert len(times) > 150
    assert all(NOW + timedelta(seconds=270) <= t <= NOW + timedelta(seconds=330) for t in times)


def test_failure_backoff_doubles_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [
        (domain.retry_at(NOW, 300, n, 3600, 0.0, rng) - NOW).total_seconds() for n in range(1, 7)
    ]
    assert delays == [300, 600, 1200, 2400, 3600, 3600]


def test_first_polls_spread_over_a_minute() -> None:
    rng = random.Random(3)
    firsts = [domain.first_poll_at(NOW, 300, rng) for _ in range(100)]
    assert min(firsts) >= NOW and max(firsts) <= NOW + timedelta(seconds=60)


POLICY = BreakerPolicy(threshold=3, cooldown_s=600, max_cooldown_s=3600)


def test_breaker_opens_after_threshold_and_closes_on_success() -> None:
    b = Breaker()
    for _ in range(2):
        b = domain.breaker_after(b, success=False, counts=True, now=NOW, policy=POLICY)
    assert b.state is BreakerState.CLOSED and b.allows(NOW)
    b = domain.breaker_after(b, success=False, counts=True, now=NOW, policy=POLICY)
    assert b.state is BreakerState.OPEN and not b.allows(NOW + timedelta(seconds=599))
    assert b.allows(NOW + timedelta(seconds=600))
    # The scheduler lets one trial poll through once the cool-down ends (half-open).
    trial = replace(b, state=BreakerState.HALF_OPEN)
    again = domain.breaker_after(trial, success=False, counts=True, now=NOW, policy=POLICY)
    assert again.state is BreakerState.OPEN
    assert again.open_until == NOW + timedelta(seconds=1200)  # cool-down doubles
    assert (
        domain.breaker_after(again, success=True, counts=False, now=NOW, policy=POLICY) == Breaker()
    )


def test_configuration_errors_never_open_the_breaker() -> None:
    b = Breaker()
    for _ in range(10):
        b = domain.breaker_after(b, success=False, counts=False, now=NOW, policy=POLICY)
    assert b == Breaker()


@pytest.mark.parametrize(
    ("kind", "status", "counts"),
    [
        (ErrorKind.TIMEOUT, None, True),
        (ErrorKind.CONNECTION, None, True),
        (ErrorKind.HTTP_STATUS, 503, True),
        (ErrorKind.HTTP_STATUS, 429, True),
        (ErrorKind.HTTP_STATUS, 404, False),
        (ErrorKind.MALFORMED, None, False),
        (ErrorKind.ADDRESS_REFUSED, None, False),
        (ErrorKind.ROBOTS, None, False),
    ],
)
def test_what_counts_for_the_breaker(kind: ErrorKind, status: int | None, counts: bool) -> None:
    assert domain.counts_for_breaker(kind, status) is counts


# -- health -----------------------------------------------------------------------------------


def _state(*outcomes: Outcome | None, paused: bool = False, warnings: bool = False) -> SourceState:
    return domain.source_state(
        active=True,
        paused=paused,
        breaker=Breaker(),
        now=NOW,
        connectors=[ConnectorHealth(True, o, warnings) for o in outcomes],
        error_rate=0.0,
    )


def test_source_states() -> None:
    assert _state() is SourceState.PUSH_ONLY
    assert _state(None) is SourceState.PENDING
    assert _state(Outcome.OK, Outcome.NOT_MODIFIED) is SourceState.OK
    assert _state(Outcome.OK, Outcome.ERROR) is SourceState.DEGRADED
    assert _state(Outcome.ERROR, Outcome.ERROR) is SourceState.FAILING
    assert _state(Outcome.OK, warnings=True) is SourceState.DEGRADED
    assert _state(Outcome.OK, paused=True) is SourceState.PAUSED
    opened = Breaker(BreakerState.OPEN, 5, 1, NOW + timedelta(minutes=5))
    assert (
        domain.source_state(
            active=True,
            paused=False,
            breaker=opened,
            now=NOW,
            connectors=[ConnectorHealth(True, Outcome.ERROR, False)],
            error_rate=1.0,
        )
        is SourceState.CIRCUIT_OPEN
    )


def test_section_series_lists_standard_sections_with_zeros() -> None:
    days = domain.local_days(date(2025, 6, 10), 3)
    series = domain.section_series(
        {("ct-xay-dung-dang", date(2025, 6, 9)): 4, (None, date(2025, 6, 10)): 1},
        days=days,
        sections=["ct-xay-dung-dang", "van-de-quan-tam"],
        standard=["ct-tin-tuc-hoat-dong", "ct-xay-dung-dang"],
    )
    by = {s.section: s for s in series}
    assert by["ct-tin-tuc-hoat-dong"].total == 0 and by["ct-tin-tuc-hoat-dong"].standard
    assert by["ct-xay-dung-dang"].per_day == [
        (date(2025, 6, 8), 0),
        (date(2025, 6, 9), 4),
        (date(2025, 6, 10), 0),
    ]
    assert not by["van-de-quan-tam"].standard
    assert by[None].total == 1


def test_local_range_is_vietnam_days_in_utc() -> None:
    start, end = domain.local_range(date(2025, 6, 1), date(2025, 6, 2), "Asia/Ho_Chi_Minh")
    assert start == datetime(2025, 5, 31, 17, 0, tzinfo=UTC)
    assert end == datetime(2025, 6, 2, 17, 0, tzinfo=UTC)
    assert domain.in_range(datetime(2025, 6, 2, 23, 59), start, end, "Asia/Ho_Chi_Minh")
    assert not domain.in_range(datetime(2025, 6, 3, 0, 0), start, end, "Asia/Ho_Chi_Minh")
