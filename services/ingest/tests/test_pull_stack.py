"""Pull integration against the real stack (PostgreSQL, S3 raw archive, Kafka) and local HTTP
servers serving real-shaped feeds, sitemaps and pages (loopback only)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from portal_contracts.articles import ArticleIngestedEvent, article_id_for
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest.pull.domain import external_id_for
from portal_runtime.storage import ObjectStore

from .conftest import Ingest, archived_original, read_events
from .feed_samples import (
    PARAGRAPHS,
    VN,
    Entry,
    article_page,
    atom,
    json_feed,
    rss,
    sitemap_index,
    urlset,
)
from .feed_server import FeedServer

pytestmark = pytest.mark.stack

MAPPING = {"Thời sự": "ct-tin-tuc-hoat-dong", "Xây dựng Đảng": "ct-xay-dung-dang"}


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _now() -> datetime:
    return datetime.now(VN).replace(microsecond=0)


def _entries(prefix: str, n: int, **kw: Any) -> list[Entry]:
    base = _now() - timedelta(hours=n)
    return [
        Entry(
            f"{prefix}-{i}",
            f"Tin số {i}: Hội nghị Ban Chấp hành Đảng bộ tỉnh",
            f"https://tinh.example.vn/tin/{prefix}-{i}.html",
            base + timedelta(hours=i),
            **kw,
        )
        for i in range(n)
    ]


def _ids(source: str, guids: list[str]) -> set[str]:
    return {article_id_for(source, external_id_for(g)) for g in guids}


def _of(ids: set[str]) -> Any:
    def match(event: Envelope) -> bool:
        return isinstance(event, ArticleIngestedEvent) and event.subject in ids

    return match


async def _events(ingest: Ingest, ids: set[str], want: int, settle_s: float = 2.0) -> list[Any]:
    return await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        _of(ids),
        want=want,
        timeout_s=30,
        settle_s=settle_s,
    )


async def _configure(
    ingest: Ingest,
    source: str,
    connectors: list[dict[str, Any]],
    categories: dict[str, str] | None = None,
) -> dict[str, Any]:
    resp = await ingest.http.put(
        f"/admin/v1/sources/{source}/feeds",
        json={"categories": categories or {}, "connectors": connectors},
        headers=ingest.admin_headers,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _fetch(ingest: Ingest, source: str) -> dict[str, Any]:
    resp = await ingest.http.post(f"/admin/v1/sources/{source}/fetch", headers=ingest.admin_headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _health(ingest: Ingest, source: str) -> dict[str, Any]:
    resp = await ingest.http.get(f"/admin/v1/sources/{source}/health", headers=ingest.admin_headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _rss_route(server: FeedServer, path: str, entries: list[Entry], **kw: Any) -> str:
    return server.route(path, body=rss(entries).encode(), content_type="application/rss+xml", **kw)


# -- arrival, idempotency, revisions ----------------------------------------------------------


async def test_new_items_arrive_once_and_an_unchanged_etag_makes_nothing_new(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    entries = _entries(uid, 3, categories=["Xây dựng Đảng"])
    url = _rss_route(feed_server, f"/{uid}/rss", entries, etag=f'"{uid}-v1"')
    await _configure(ingest, source, [{"kind": "rss", "url": url}], MAPPING)

    first = await _fetch(ingest, source)
    [poll] = first["polls"]
    assert poll["outcome"] == "ok", poll
    assert poll["counts"] == {"new": 3}

    ids = _ids(source, [e.guid for e in entries])
    events = await _events(ingest, ids, want=3)
    assert len(events) == 3
    for event in events:
        assert event.data.channel == "feed"
        assert event.data.revision == 1
        assert event.data.content.section == "ct-xay-dung-dang"
        assert event.data.external_id.startswith("feed/")
    # The raw item is archived like a pushed one.
    store = ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket)
    raw = json.loads(await archived_original(store, events[0].data))
    assert raw["channel"] == "feed" and raw["connector"]["url"] == url

    second = await _fetch(ingest, source)
    assert second["polls"][0]["outcome"] == "not_modified"
    hits = feed_server.hits(f"/{uid}/rss")
    assert hits[-1].headers.get("if-none-match") == f'"{uid}-v1"'
    assert len(await _events(ingest, ids, want=3)) == 3  # nothing new

    health = await _health(ingest, source)
    assert health["state"] == "ok" and health["mode"] == "pull"
    assert health["last_success_at"] and health["last_new_item_at"]
    assert health["errors"] == 0 and health["error_rate"] == 0
    assert health["connectors"][0]["conditional"] is True
    [xdd] = [s for s in health["sections"] if s["section"] == "ct-xay-dung-dang"]
    assert xdd["standard"] and xdd["total"] == 3 and xdd["days"][-1]["count"] == 3
    assert "ct-tin-tuc-hoat-dong" in health["standard_sections_without_items"]


async def test_same_bytes_without_etag_make_nothing_new(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    entries = _entries(uid, 2)
    url = _rss_route(feed_server, f"/{uid}/rss", entries)
    await _configure(
        ingest, source, [{"kind": "rss", "url": url, "section": "ct-tin-tuc-hoat-dong"}]
    )
    assert (await _fetch(ingest, source))["polls"][0]["counts"] == {"new": 2}
    assert (await _fetch(ingest, source))["polls"][0]["outcome"] == "unchanged"


async def test_an_updated_item_becomes_a_new_revision(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    entries = _entries(uid, 2)
    path = f"/{uid}/rss"
    url = _rss_route(feed_server, path, entries, etag='"v1"')
    await _configure(ingest, source, [{"kind": "rss", "url": url}], MAPPING)
    await _fetch(ingest, source)

    entries[0].title = "Tin số 0 (cập nhật): Hội nghị lần thứ 15 bế mạc"
    _rss_route(feed_server, path, entries, etag='"v2"')
    poll = (await _fetch(ingest, source))["polls"][0]
    assert poll["outcome"] == "ok"
    assert poll["counts"] == {"updated": 1, "unchanged": 1}

    changed = _ids(source, [entries[0].guid])
    events = await _events(ingest, changed, want=2)
    assert sorted(e.data.revision for e in events) == [1, 2]
    newest = max(events, key=lambda e: e.data.revision)
    assert newest.data.content.title.startswith("Tin số 0 (cập nhật)")
    assert len(await _events(ingest, _ids(source, [entries[1].guid]), want=1)) == 1


# -- problems stay with their source ----------------------------------------------------------


async def test_problems_show_in_health_without_stopping_other_sources(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    uid = _uid()
    good_rss, good_atom, good_json = [await ingest.new_source() for _ in range(3)]
    broken, garbage, wrong_enc, failing, slow = [await ingest.new_source() for _ in range(5)]
    entries = _entries(uid, 2)
    routes = {
        good_rss: _rss_route(feed_server, f"/{uid}/ok.rss", _entries(uid + "r", 2)),
        good_atom: feed_server.route(
            f"/{uid}/ok.atom",
            body=atom(_entries(uid + "a", 2)).encode(),
            content_type="application/atom+xml",
        ),
        good_json: feed_server.route(
            f"/{uid}/ok.json",
            body=json_feed(_entries(uid + "j", 2)).encode(),
            content_type="application/feed+json",
        ),
        broken: feed_server.route(
            f"/{uid}/broken.rss",
            body=rss(_entries(uid + "b", 3)).replace("</item>", "", 1).encode(),
        ),
        garbage: feed_server.route(
            f"/{uid}/garbage.rss", body=b"<?xml version='1.0'?><rss><channel><<<!!! \x00"
        ),
        wrong_enc: feed_server.route(
            f"/{uid}/latin1.rss",
            body=rss(entries, encoding="ISO-8859-1").encode("utf-8"),
            content_type="application/rss+xml",
        ),
        failing: feed_server.route(f"/{uid}/500.rss", status=500, body=b"Internal Server Error"),
        slow: feed_server.route(f"/{uid}/slow.rss", body=rss(entries).encode(), delay_s=3.0),
    }
    kinds = {good_atom: "atom", good_json: "jsonfeed"}
    for source, url in routes.items():
        await _configure(
            ingest,
            source,
            [{"kind": kinds.get(source, "rss"), "url": url, "section": "ct-tin-tuc-hoat-dong"}],
        )

    results = await asyncio.gather(*(_fetch(ingest, s) for s in routes))
    by_source = {s: r["polls"][0] for s, r in zip(routes, results, strict=True)}
    for good in (good_rss, good_atom, good_json):
        assert by_source[good]["outcome"] == "ok" and by_source[good]["counts"] == {"new": 2}
        health = await _health(ingest, good)
        assert health["state"] == "ok", health

    # Broken XML, recovered: the readable items arrive, the source is degraded with a warning.
    health = await _health(ingest, broken)
    assert by_source[broken]["counts"].get("new", 0) >= 1
    assert health["state"] == "degraded"
    assert any("malformed XML" in w["message"] for w in health["warning_list"])

    # Unreadable XML: an error of kind malformed.
    health = await _health(ingest, garbage)
    assert health["state"] == "failing"
    assert health["last_error"]["kind"] == "malformed"

    # Wrong declaration: decoded right (UTF-8), reported.
    health = await _health(ingest, wrong_enc)
    assert by_source[wrong_enc]["counts"] == {"new": 2}
    assert any("ISO-8859-1" in w["message"] for w in health["warning_list"])
    [event, *_] = await _events(ingest, _ids(wrong_enc, [entries[0].guid]), want=1, settle_s=0)
    assert event.data.content.title == entries[0].title  # Vietnamese intact

    health = await _health(ingest, failing)
    assert health["state"] == "failing"
    assert health["last_error"]["kind"] == "http_status"
    assert health["last_error"]["http_status"] == 500
    assert health["error_rate"] == 1.0 and health["fetches"] == 1
    assert health["breaker"]["consecutive_failures"] == 1

    health = await _health(ingest, slow)
    assert health["last_error"]["kind"] == "timeout"

    overview = await ingest.http.get("/admin/v1/health", headers=ingest.admin_headers)
    assert overview.status_code == 200
    states = {s["source"]: s["state"] for s in overview.json()["sources"]}
    assert states[good_rss] == "ok" and states[failing] == "failing"
    assert overview.json()["totals"]["pull_sources"] >= 8


# -- address safety ---------------------------------------------------------------------------


async def test_item_links_redirecting_to_a_disallowed_address_are_refused_and_reported(
    ingest: Ingest, feed_server: FeedServer, outside_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    secret = outside_server.route(f"/{uid}/admin", body=b"internal")
    good_page = feed_server.route(
        f"/{uid}/tin/good.html",
        body=article_page(
            "Hội nghị lần thứ 15 Ban Chấp hành Đảng bộ tỉnh",
            PARAGRAPHS,
            published=_now(),
            images=[f"/{uid}/upload/anh-1.jpg"],
        ).encode(),
        content_type="text/html; charset=utf-8",
    )
    bad_page = feed_server.route(f"/{uid}/tin/bad.html", status=302, location=secret)
    entries = [
        Entry(f"{uid}-good", "Tin tốt", good_page, _now() - timedelta(hours=1), body=None),
        Entry(f"{uid}-bad", "Tin chuyển hướng", bad_page, _now(), body=None),
    ]
    url = _rss_route(feed_server, f"/{uid}/rss", entries)
    await _configure(
        ingest,
        source,
        [{"kind": "rss", "url": url, "fetch_full_page": True, "section": "ct-xay-dung-dang"}],
    )

    poll = (await _fetch(ingest, source))["polls"][0]
    assert poll["counts"] == {"new": 1, "failed": 1}
    assert outside_server.hits(f"/{uid}/admin") == []

    health = await _health(ingest, source)
    [problem] = [p for p in health["item_problems"] if p["state"] == "failed"]
    assert "refused" in problem["reason"] and "loopback" in problem["reason"]
    assert health["failed_items"] == 1

    # The summary-only item came with its page's main content and images.
    [event] = await _events(ingest, _ids(source, [f"{uid}-good"]), want=1, settle_s=0)
    content = event.data.content
    assert "Ban Chấp hành Đảng bộ tỉnh" in content.body_html
    assert "Bản quyền" not in content.body_html
    assert feed_server.url(f"/{uid}/upload/anh-1.jpg") in [str(i.url) for i in content.images]


async def test_a_feed_redirecting_to_a_disallowed_address_is_refused(
    ingest: Ingest, feed_server: FeedServer, outside_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    target = outside_server.route(f"/{uid}/rss", body=rss(_entries(uid, 1)).encode())
    url = feed_server.route(f"/{uid}/rss", status=301, location=target)
    await _configure(ingest, source, [{"kind": "rss", "url": url, "section": "ct-xay-dung-dang"}])
    poll = (await _fetch(ingest, source))["polls"][0]
    assert poll["outcome"] == "error" and poll["error_kind"] == "address_refused"
    assert outside_server.hits(f"/{uid}/rss") == []
    health = await _health(ingest, source)
    assert health["last_error"]["kind"] == "address_refused"
    assert "loopback" in health["last_error"]["message"]
    # The site answered; our refusal must not open its circuit breaker.
    assert health["breaker"]["consecutive_failures"] == 0


async def test_feed_urls_with_internal_literal_addresses_are_refused_at_configuration(
    ingest: Ingest,
) -> None:
    source = await ingest.new_source()
    resp = await ingest.http.put(
        f"/admin/v1/sources/{source}/feeds",
        json={"connectors": [{"kind": "rss", "url": "http://169.254.169.254/latest/rss"}]},
        headers=ingest.admin_headers,
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "connectors[0].url"
    assert "metadata" in resp.json()["detail"]


# -- mapping: held, never dropped -------------------------------------------------------------


async def test_unmapped_categories_are_held_and_released_by_a_new_mapping(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    entries = _entries(uid, 3, categories=["Thể thao"])
    entries[2].categories = ["Văn hóa"]
    url = _rss_route(feed_server, f"/{uid}/rss", entries)
    connectors = [{"kind": "rss", "url": url}]
    await _configure(ingest, source, connectors, MAPPING)
    poll = (await _fetch(ingest, source))["polls"][0]
    assert poll["counts"] == {"held": 3}

    held = await ingest.http.get(
        f"/admin/v1/sources/{source}/feed-items",
        params={"state": "held"},
        headers=ingest.admin_headers,
    )
    items = held.json()["items"]
    assert len(items) == 3 and all("no section is mapped" in i["reason"] for i in items)
    health = await _health(ingest, source)
    assert health["held_items"] == 3

    # A mapping for "Thể thao" sends its two items at once.
    body = await _configure(
        ingest, source, connectors, {**MAPPING, "thể THAO": "ct-tin-tuc-hoat-dong"}
    )
    assert body["released_held_items"] == 2
    events = await _events(ingest, _ids(source, [e.guid for e in entries[:2]]), want=2)
    assert {e.data.content.section for e in events} == {"ct-tin-tuc-hoat-dong"}

    # The last one an operator sends by hand.
    [rest] = [i for i in items if i["title"] == entries[2].title]
    resp = await ingest.http.post(
        f"/admin/v1/sources/{source}/feed-items/{rest['id']}/release",
        json={"section": "ct-van-ban-tai-lieu"},
        headers=ingest.admin_headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "released"
    [event] = await _events(ingest, _ids(source, [entries[2].guid]), want=1, settle_s=0)
    assert event.data.content.section == "ct-van-ban-tai-lieu"
    again = await ingest.http.post(
        f"/admin/v1/sources/{source}/feed-items/{rest['id']}/release",
        json={"section": "ct-van-ban-tai-lieu"},
        headers=ingest.admin_headers,
    )
    assert again.status_code == 409
    # Still listed in the feed: a later poll neither holds nor resends them.
    poll = (await _fetch(ingest, source))["polls"][0]
    assert poll["outcome"] == "unchanged"


# -- vanished items ---------------------------------------------------------------------------


async def test_a_vanished_item_is_retracted_only_when_the_policy_says_so(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    uid = _uid()
    entries = _entries(uid, 3)
    sources = {}
    for policy in (True, False):
        source = await ingest.new_source()
        path = f"/{uid}/{policy}/rss"
        url = _rss_route(feed_server, path, entries, etag='"v1"')
        await _configure(
            ingest,
            source,
            [
                {
                    "kind": "rss",
                    "url": url,
                    "section": "ct-tin-tuc-hoat-dong",
                    "retract_missing": policy,
                }
            ],
        )
        await _fetch(ingest, source)
        # The middle item is taken down (the oldest is still listed: not a rotation).
        _rss_route(feed_server, path, [entries[0], entries[2]], etag='"v2"')
        sources[policy] = source

    for policy, source in sources.items():
        first = (await _fetch(ingest, source))["polls"][0]
        assert first["counts"].get("retracted", 0) == 0  # once may be a glitch
        second = (await _fetch(ingest, source))["polls"][0]
        assert second["outcome"] == "not_modified"
        assert second["counts"].get("retracted", 0) == (1 if policy else 0)

    gone = entries[1].guid
    retracting = await _events(ingest, _ids(sources[True], [gone]), want=2)
    assert sorted(e.data.action for e in retracting) == ["retract", "upsert"]
    kept = await _events(ingest, _ids(sources[False], [gone]), want=1)
    assert [e.data.action for e in kept] == ["upsert"]


# -- operations -------------------------------------------------------------------------------


async def test_pause_resume_and_the_scheduler(ingest: Ingest, feed_server: FeedServer) -> None:
    scheduler = ingest.app.state.pull.scheduler
    source = await ingest.new_source()
    uid = _uid()
    url = _rss_route(feed_server, f"/{uid}/rss", _entries(uid, 1))
    feeds = await _configure(
        ingest,
        source,
        [{"kind": "rss", "url": url, "interval_s": 1, "section": "ct-xay-dung-dang"}],
    )
    connector_id = feeds["connectors"][0]["id"]

    paused = await ingest.http.post(
        f"/admin/v1/sources/{source}/pause",
        json={"reason": "the site is being migrated"},
        headers=ingest.admin_headers,
    )
    assert paused.status_code == 200 and paused.json()["paused"] is True
    await asyncio.sleep(1.2)  # due by now
    await scheduler.tick()
    assert connector_id not in scheduler.polls
    assert feed_server.hits(f"/{uid}/rss") == []
    health = await _health(ingest, source)
    assert health["state"] == "paused" and health["paused_reason"] == "the site is being migrated"

    resumed = await ingest.http.post(
        f"/admin/v1/sources/{source}/resume", headers=ingest.admin_headers
    )
    assert resumed.json()["paused"] is False
    task = None
    for _ in range(100):  # connectors due earlier (other tests' leftovers) go first
        await scheduler.tick()
        task = scheduler.polls.get(connector_id)
        if task is not None:
            break
        await asyncio.sleep(0.3)
    assert task is not None
    report = await task
    assert report.counts.new == 1 and report.trigger == "schedule"
    health = await _health(ingest, source)
    [connector] = health["connectors"]
    # Rescheduled one interval (+-jitter) after the poll.
    next_at = datetime.fromisoformat(connector["next_fetch_at"])
    last_at = datetime.fromisoformat(connector["last_fetch_at"])
    assert timedelta(seconds=0.8) <= next_at - last_at <= timedelta(seconds=1.2)


async def test_repeated_site_failures_open_the_circuit_breaker(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    scheduler = ingest.app.state.pull.scheduler
    source = await ingest.new_source()
    uid = _uid()
    path = f"/{uid}/rss"
    url = feed_server.route(path, status=503, body=b"maintenance")
    feeds = await _configure(
        ingest,
        source,
        [{"kind": "rss", "url": url, "interval_s": 1, "section": "ct-xay-dung-dang"}],
    )
    connector_id = feeds["connectors"][0]["id"]
    for _ in range(ingest.settings.breaker_failure_threshold):
        await _fetch(ingest, source)
    health = await _health(ingest, source)
    assert health["breaker"]["state"] == "open" and health["state"] == "circuit_open"
    requests = len(feed_server.hits(path))
    await asyncio.sleep(1.2)
    await scheduler.tick()
    assert connector_id not in scheduler.polls  # the site is left alone
    assert len(feed_server.hits(path)) == requests

    # An operator's fetch goes through; a success closes the breaker.
    _rss_route(feed_server, path, _entries(uid, 1))
    await _fetch(ingest, source)
    health = await _health(ingest, source)
    assert health["breaker"]["state"] == "closed" and health["breaker"]["open_until"] is None
    # Working again, with the failed polls still in the window's error rate.
    assert health["state"] == "degraded" and health["error_rate"] == round(5 / 6, 4)


async def test_backfill_a_date_range_from_a_sitemap(
    ingest: Ingest, feed_server: FeedServer
) -> None:
    source = await ingest.new_source()
    uid = _uid()
    today = _now()
    recent = today - timedelta(hours=2)
    may = [datetime(2025, 5, d, 9, 0, tzinfo=VN) for d in (3, 10, 20)]
    april = datetime(2025, 4, 28, 9, 0, tzinfo=VN)

    def page(name: str, when: datetime) -> str:
        return feed_server.route(
            f"/{uid}/tin/{name}.html",
            body=article_page(
                f"Bài {name}: hoạt động của Đảng bộ tỉnh", PARAGRAPHS, published=when
            ).encode(),
            content_type="text/html; charset=utf-8",
        )

    current = feed_server.route(
        f"/{uid}/sitemap-current.xml",
        body=urlset([(page("moi", recent), recent)]).encode(),
    )
    old = feed_server.route(
        f"/{uid}/sitemap-2025-05.xml",
        body=urlset(
            [(page(f"thang5-{w.day}", w), w) for w in may] + [(page("thang4", april), april)]
        ).encode(),
    )
    index = feed_server.route(
        f"/{uid}/sitemap.xml",
        body=sitemap_index([(current, recent), (old, may[-1])]).encode(),
    )
    feeds = await _configure(
        ingest, source, [{"kind": "sitemap", "url": index, "section": "ct-tin-tuc-hoat-dong"}]
    )

    # A regular poll takes what is recent; history is left for a backfill.
    poll = (await _fetch(ingest, source))["polls"][0]
    assert poll["counts"] == {"new": 1}
    assert feed_server.hits(old.removeprefix(feed_server.url(""))) == []  # old child not read

    resp = await ingest.http.post(
        f"/admin/v1/sources/{source}/backfills",
        json={"from": "2025-05-01", "to": "2025-05-31"},
        headers=ingest.admin_headers,
    )
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["state"] == "queued" and job["connector_id"] is None
    ingest.app.state.pull.scheduler.wake()
    for _ in range(100):
        got = await ingest.http.get(
            f"/admin/v1/sources/{source}/backfills/{job['id']}", headers=ingest.admin_headers
        )
        if got.json()["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.2)
    done = got.json()
    assert done["state"] == "done", done
    assert done["counts"]["new"] == 3
    urls = [feed_server.url(f"/{uid}/tin/thang5-{w.day}.html") for w in may]
    keys = [external_id_for(u) for u in urls]
    ids = {article_id_for(source, k) for k in keys}
    events = await _events(ingest, ids, want=3)
    assert len(events) == 3
    april_id = article_id_for(source, external_id_for(feed_server.url(f"/{uid}/tin/thang4.html")))
    assert await _events(ingest, {april_id}, want=1, settle_s=0) == []
    assert feeds["connectors"][0]["kind"] == "sitemap"


# -- the admin API refuses what it cannot do --------------------------------------------------


async def test_admin_api_validation(ingest: Ingest) -> None:
    source = await ingest.new_source()
    put = await ingest.http.put(
        f"/admin/v1/sources/{source}/feeds",
        json={
            "connectors": [
                {
                    "kind": "rss",
                    "url": "https://tinh.example.vn/rss",
                    "categories": {"Thể thao": "the-thao"},
                }
            ]
        },
        headers=ingest.admin_headers,
    )
    assert put.status_code == 422
    assert put.json()["errors"][0]["field"] == "connectors[0].categories.Thể thao"

    bad_kind = await ingest.http.put(
        f"/admin/v1/sources/{source}/feeds",
        json={"connectors": [{"kind": "podcast", "url": "https://tinh.example.vn/rss"}]},
        headers=ingest.admin_headers,
    )
    assert bad_kind.status_code == 422 and "connectors.0.kind" in bad_kind.json()["detail"]

    assert (
        await ingest.http.post(f"/admin/v1/sources/{source}/fetch", headers=ingest.admin_headers)
    ).status_code == 409
    backfill = await ingest.http.post(
        f"/admin/v1/sources/{source}/backfills",
        json={"from": "2025-05-02", "to": "2025-05-01"},
        headers=ingest.admin_headers,
    )
    assert backfill.status_code == 422
    no_sitemap = await ingest.http.post(
        f"/admin/v1/sources/{source}/backfills",
        json={"from": "2025-05-01", "to": "2025-05-02"},
        headers=ingest.admin_headers,
    )
    assert no_sitemap.status_code == 409
    assert (
        await ingest.http.get("/admin/v1/sources/khong-co/health", headers=ingest.admin_headers)
    ).status_code == 404
    assert (await ingest.http.get("/admin/v1/health")).status_code == 401
    assert (await ingest.http.get(f"/admin/v1/sources/{source}/feeds")).status_code == 401
