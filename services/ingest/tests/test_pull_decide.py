"""The poll's decisions (``pull.decide``), without infrastructure: what happens to each listed
item, the article an item and its page make, what is recorded, and the schedule after a poll."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal_ingest.pull import domain
from portal_ingest.pull.decide import (
    Backoff,
    Decision,
    ItemRecord,
    Pass,
    article_content,
    connector_after_poll,
    failed_attempts,
    item_values,
    listing_of,
    pick_children,
    plan,
    unique_items,
)
from portal_ingest.pull.domain import Connector, ConnectorKind, ErrorKind, ItemState, Outcome
from portal_ingest.pull.parse import ChildSitemap, FeedItem, Image, PageContent
from portal_ingest.pull.report import PollReport, Work
from portal_ingest.pull.repository import ConnectorRow, ItemRow

NOW = datetime(2025, 6, 10, 3, 0, tzinfo=UTC)
ZONE = "Asia/Ho_Chi_Minh"


def connector(kind: ConnectorKind = ConnectorKind.RSS, *, full_page: bool = False) -> Connector:
    return Connector(
        id=1,
        source="hanoi",
        kind=kind,
        url="https://hanoi.example/rss",
        categories={},
        section=None,
        interval_s=600,
        fetch_full_page=full_page,
        retract_missing=False,
        lookback_days=2,
    )


def item(n: int, *, hours_ago: float | None = 1, title: str = "Tin") -> FeedItem:
    published = NOW - timedelta(hours=hours_ago) if hours_ago is not None else None
    return FeedItem(
        key=f"https://hanoi.example/bai/{n}",
        url=f"https://hanoi.example/bai/{n}",
        title=f"{title} {n}",
        published_at=published,
        raw={"n": n},
    )


def row_of(found: FeedItem, **changes: Any) -> ItemRow:
    values: dict[str, Any] = {
        "source": "hanoi",
        "key_hash": domain.key_hash(found.key),
        "id": 7,
        "item_key": found.key,
        "external_id": domain.external_id_for(found.key),
        "article_id": "a-1",
        "connector_id": 1,
        "url": found.url,
        "title": "Tiêu đề cũ",
        "categories": [],
        "section": "tin-tuc",
        "fingerprint": found.fingerprint(),
        "state": ItemState.INGESTED,
        "reason": None,
        "attempts": 0,
        "revision": 2,
        "published_at": NOW - timedelta(days=3),
        "held_content": None,
        "held_raw": None,
        "first_seen_at": NOW,
        "last_seen_at": NOW,
        "missing_polls": 0,
        "missing_since": None,
        "updated_at": NOW,
    }
    return ItemRow(**{**values, **changes})


def a_pass(c: Connector | None = None, **changes: Any) -> Pass:
    values: dict[str, Any] = {
        "connector": c or connector(),
        "siblings": [1, 2],
        "work": Work("schedule"),
        "max_attempts": 3,
        "zone": ZONE,
    }
    return Pass(**{**values, **changes})


def decisions(
    items: list[FeedItem], known: dict[str, ItemRow], p: Pass
) -> list[tuple[str, Decision]]:
    return [(s.item.key[-1], s.decision) for s in plan(unique_items(items), known, p)]


# -- what happens to each listed item -----------------------------------------------------------


def test_new_items_are_ingested_oldest_first_and_twins_once() -> None:
    newer, older = item(1, hours_ago=1), item(2, hours_ago=5)
    assert decisions([newer, older, newer], {}, a_pass()) == [
        ("2", Decision.INGEST),
        ("1", Decision.INGEST),
    ]


def test_known_items_are_unchanged_changed_ones_ingested_again() -> None:
    same, changed = item(1), item(2)
    known = {
        domain.key_hash(same.key): row_of(same),
        domain.key_hash(changed.key): row_of(changed, fingerprint="older content"),
    }
    steps = {s.item.key: s for s in plan(unique_items([same, changed]), known, a_pass())}
    assert steps[same.key].decision is Decision.UNCHANGED
    assert steps[changed.key].decision is Decision.INGEST
    assert steps[changed.key].action is domain.ItemAction.UPDATE
    assert all(s.seen for s in steps.values())


def test_an_item_another_live_feed_owns_is_left_to_it_and_not_seen() -> None:
    found = item(1)
    known = {domain.key_hash(found.key): row_of(found, connector_id=2)}
    (step,) = plan(unique_items([found]), known, a_pass())
    assert step.decision is Decision.OTHER_CONNECTOR
    assert not step.seen
    # Once that feed is gone, this one takes the item over.
    (step,) = plan(unique_items([found]), known, a_pass(siblings=[1]))
    assert step.decision is Decision.UNCHANGED


def test_a_held_item_is_rechecked_and_a_failed_one_given_up_after_max_attempts() -> None:
    held, failed = item(1), item(2)
    known = {
        domain.key_hash(held.key): row_of(held, state=ItemState.HELD),
        domain.key_hash(failed.key): row_of(failed, state=ItemState.FAILED, attempts=3),
    }
    assert dict(decisions([held, failed], known, a_pass())) == {
        "1": Decision.RECHECK,
        "2": Decision.UNCHANGED,
    }
    known[domain.key_hash(failed.key)] = row_of(failed, state=ItemState.FAILED, attempts=1)
    assert dict(decisions([failed], known, a_pass()))["2"] is Decision.INGEST


def test_page_budget_defers_the_newest_items_to_the_next_poll() -> None:
    items = [item(n, hours_ago=n) for n in range(1, 5)]  # item 4 is the oldest
    p = a_pass(connector(full_page=True), work=Work("schedule", page_budget=2))
    steps = plan(unique_items(items), {}, p)
    assert [(s.item.key[-1], s.decision) for s in steps] == [
        ("4", Decision.INGEST),
        ("3", Decision.INGEST),
        ("2", Decision.DEFERRED),
        ("1", Decision.DEFERRED),
    ]
    assert [s.seen for s in steps] == [True, True, False, False]
    # Without page fetches there is no budget to spend.
    assert {d for _, d in decisions(items, {}, a_pass(work=p.work))} == {Decision.INGEST}


def test_a_sitemap_leaves_old_addresses_and_first_poll_undated_ones_to_a_backfill() -> None:
    sitemap = connector(ConnectorKind.SITEMAP)
    old, recent, undated = item(1, hours_ago=72), item(2, hours_ago=1), item(3, hours_ago=None)
    cutoff = NOW - timedelta(days=2)
    first = a_pass(sitemap, first_poll=True, history_before=cutoff)
    assert dict(decisions([old, recent, undated], {}, first)) == {
        "1": Decision.HISTORY,
        "2": Decision.INGEST,
        "3": Decision.HISTORY,
    }
    later = a_pass(sitemap, first_poll=False, history_before=cutoff)
    assert dict(decisions([undated], {}, later))["3"] is Decision.INGEST


def test_a_backfill_takes_only_its_date_range_and_the_history_left_to_it() -> None:
    inside, outside = item(1, hours_ago=30), item(2, hours_ago=24 * 30)
    seen = row_of(inside, state=ItemState.SEEN)
    p = a_pass(
        connector(ConnectorKind.SITEMAP),
        work=Work("backfill", range_utc=(NOW - timedelta(days=3), NOW)),
        history_before=NOW - timedelta(days=2),  # ignored by a backfill
    )
    steps = plan(unique_items([inside, outside]), {domain.key_hash(inside.key): seen}, p)
    by_key = {s.item.key[-1]: s for s in steps}
    assert by_key["2"].decision is Decision.OUT_OF_RANGE
    assert by_key["1"].decision is Decision.INGEST
    assert by_key["1"].action is domain.ItemAction.UPDATE


# -- listings -----------------------------------------------------------------------------------


def test_child_sitemaps_changed_recently_first_undated_always() -> None:
    children = [
        ChildSitemap("https://x/a.xml", NOW - timedelta(days=10)),
        ChildSitemap("https://x/b.xml", NOW - timedelta(hours=1)),
        ChildSitemap("https://x/c.xml", None),
        ChildSitemap("https://x/d.xml", NOW - timedelta(days=1)),
    ]
    picked = pick_children(children, NOW - timedelta(days=2), limit=2)
    assert [c.url for c in picked] == ["https://x/b.xml", "https://x/d.xml"]
    assert [c.url for c in pick_children(children, None, 10)][-1] == "https://x/c.xml"


def test_a_feed_window_starts_at_its_oldest_dated_item_a_urlset_has_none() -> None:
    items = [item(1, hours_ago=2), item(2, hours_ago=9), item(3, hours_ago=None)]
    window = listing_of(items, complete=True, windowed=True, zone=ZONE)
    assert window.window_start == NOW - timedelta(hours=9)
    urlset = listing_of(items, complete=True, windowed=False, zone=ZONE)
    assert urlset.window_start is None and not urlset.windowed


# -- the article --------------------------------------------------------------------------------


def page(**changes: Any) -> PageContent:
    values: dict[str, Any] = {
        "title": "Tiêu đề trên trang",
        "body_html": "<p>Toàn văn bài viết trên trang.</p>",
        "author": "Phóng viên",
        "published_at": NOW - timedelta(hours=3),
        "canonical_url": "https://hanoi.example/bai/1",
        "description": "Mô tả",
        "categories": ("Xây dựng Đảng",),
        "images": (Image("https://hanoi.example/a.jpg", "Ảnh"),),
    }
    return PageContent(**{**values, **changes})


def test_the_page_gives_the_body_the_feed_gives_title_date_and_summary() -> None:
    feed_item = FeedItem(
        key="k",
        url="https://hanoi.example/bai/1",
        title="Tiêu đề trong feed",
        summary="Tóm tắt trong feed",
        published_at=NOW - timedelta(hours=1),
        images=(Image("https://hanoi.example/a.jpg", "Ảnh"),),
    )
    content = article_content(feed_item, page())
    assert content.title == "Tiêu đề trong feed"
    assert content.summary == "Tóm tắt trong feed"
    assert "Toàn văn" in content.body_html
    assert content.published_at == NOW - timedelta(hours=1)
    assert content.author == "Phóng viên"
    assert [str(i.url) for i in content.images] == ["https://hanoi.example/a.jpg"]  # once


def test_an_invalid_optional_field_is_dropped_not_the_article() -> None:
    feed_item = FeedItem(key="k", url="not a url", title="Tin", body_html="<p>Nội dung</p>")
    content = article_content(feed_item, None)
    assert content.title == "Tin"
    assert content.canonical_url is None


def test_an_item_without_a_title_anywhere_is_refused() -> None:
    with pytest.raises(ValueError, match="no title"):
        article_content(FeedItem(key="k", url=None, body_html="<p>x</p>"), page(title=None))


# -- what is recorded ---------------------------------------------------------------------------


def test_the_row_keeps_what_the_item_does_not_say() -> None:
    bare = FeedItem(key="https://hanoi.example/bai/1", url=None)
    current = row_of(bare, fingerprint="kept", revision=4)
    values = item_values(
        connector(), bare, "h", ItemState.SEEN, ItemRecord(), current=current, now=NOW, zone=ZONE
    )
    assert values["url"] == current.url
    assert values["title"] == "Tiêu đề cũ"
    assert values["revision"] == 4
    assert values["published_at"] == current.published_at
    assert values["fingerprint"] == "kept"
    assert values["state"] == "seen" and values["missing_polls"] == 0
    sent = item_values(
        connector(),
        item(1),
        "h",
        ItemState.INGESTED,
        ItemRecord(revision=5, title="Mới", section="tin-tuc"),
        current=current,
        now=NOW,
        zone=ZONE,
    )
    assert (sent["revision"], sent["title"], sent["section"]) == (5, "Mới", "tin-tuc")


def test_failures_are_counted_while_the_content_stays_the_same() -> None:
    found = item(1)
    assert failed_attempts(None, found) == 1
    assert failed_attempts(row_of(found, state=ItemState.FAILED, attempts=2), found) == 3
    changed = row_of(found, state=ItemState.FAILED, attempts=2, fingerprint="other")
    assert failed_attempts(changed, found) == 1
    assert failed_attempts(row_of(found, attempts=2), found) == 1


# -- after a poll -------------------------------------------------------------------------------


def connector_row(**changes: Any) -> ConnectorRow:
    values: dict[str, Any] = {
        "id": 1,
        "source": "hanoi",
        "position": 0,
        "kind": "rss",
        "url": "https://hanoi.example/rss",
        "categories": {},
        "section": None,
        "interval_s": 600,
        "fetch_full_page": False,
        "retract_missing": False,
        "enabled": True,
        "lookback_days": 2,
        "etag": None,
        "last_modified": None,
        "body_hash": None,
        "next_fetch_at": NOW,
        "lease_until": None,
        "consecutive_failures": 2,
        "first_polled_at": None,
        "last_fetch_at": None,
        "last_success_at": None,
        "last_outcome": None,
        "last_http_status": None,
        "last_error_kind": None,
        "last_error": None,
        "last_error_at": None,
        "last_warnings": [],
        "created_at": NOW,
        "updated_at": NOW,
    }
    return ConnectorRow(**{**values, **changes})


def test_a_successful_poll_keeps_its_validators_only_when_nothing_is_left_to_do() -> None:
    report = PollReport(1, "hanoi", "u", "schedule", NOW)
    report.keep_validators('"v1"', "Tue", "hash")
    backoff = Backoff(jitter=0.0, max_backoff_s=3600)
    values = connector_after_poll(connector_row(), report, NOW, backoff, random.Random(1))
    assert values["etag"] == '"v1"' and values["consecutive_failures"] == 0
    assert values["first_polled_at"] == NOW
    assert values["next_fetch_at"] == NOW + timedelta(seconds=600)
    report.complete_work = False
    values = connector_after_poll(connector_row(), report, NOW, backoff, random.Random(1))
    assert values["etag"] is None and values["body_hash"] is None


def test_a_failed_poll_backs_off_and_says_why() -> None:
    report = PollReport(1, "hanoi", "u", "schedule", NOW).fail(ErrorKind.HTTP_STATUS, "503", 503)
    backoff = Backoff(jitter=0.0, max_backoff_s=3600)
    values = connector_after_poll(connector_row(), report, NOW, backoff, random.Random(1))
    assert values["consecutive_failures"] == 3
    assert values["last_outcome"] == Outcome.ERROR.value
    assert values["last_error_kind"] == "http_status" and values["last_http_status"] == 503
    assert values["next_fetch_at"] == NOW + timedelta(seconds=2400)  # 600 * 2^2
    assert "etag" not in values
