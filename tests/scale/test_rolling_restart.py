"""Scale-out: two instances of every service share the work while a partner keeps pushing; a
release rolls out (SIGTERM to one instance of every service at once, each started again and
serving before the next instance goes), then consumers are scaled up and down mid-stream. Afterwards nothing acknowledged is lost or doubled:

- every acknowledged article is public, on every publishing instance, exactly once at its
  newest revision, and searchable exactly once with that revision's title;
- no event is on its topic twice (the relays of two instances share one outbox table);
- a SIGTERMed instance's partitions move to the others in seconds (it leaves its groups rather
  than waiting out the session timeout): each move is measured and printed, with the longest
  pause between two publications while the instances came and went.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psutil
import pytest

from portal_contracts.topics import (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    ARTICLE_REVIEWED,
)
from portal_launcher import stack as launcher
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.ops_kafka import Assigned, group_assignments
from portal_launcher.services import BACKENDS, PROCESSES, ServiceProcess, process
from tests.chaos.partner import PartnerStream
from tests.e2e.conftest import Portal
from tests.scale.report import LINES
from tests.support import OutsideClient

pytestmark = pytest.mark.stack

SOURCE = "bao-nhan-dan"  # trusted in deploy/seed/sources.yaml: published without review
SECTION = "van-de-quan-tam"
INSTANCES = 2
SCALED_UP = {"normalize": 3, "publishing": 3}
ARTICLE_TOPICS = (ARTICLE_INGESTED, ARTICLE_NORMALIZED, ARTICLE_REVIEWED, ARTICLE_PUBLISHED)
MOVE_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 240.0


@dataclass
class Move:
    """A SIGTERMed instance: how long until its partitions were assigned to the others, and
    until it had exited."""

    instance: str
    moved_s: float
    exited_s: float


@dataclass
class Report:
    moves: list[Move] = field(default_factory=list)

    def say(self, line: str) -> None:
        LINES.append(line)
        print(line, flush=True)


# -- the instances --------------------------------------------------------------------------


def _holdings(
    assigned: dict[str, list[Assigned]], ids: set[str]
) -> dict[tuple[str, str], set[int]]:
    """(group, topic) -> partitions that the instances ``ids`` hold, in groups that are stable
    (a rebalancing group's assignments are the past's)."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for client, items in assigned.items():
        if client in ids:
            for a in items:
                if a.state == "Stable":
                    out[(a.group, a.topic)].update(a.partitions)
    return out


def _stable(assigned: dict[str, list[Assigned]], ids: set[str]) -> bool:
    return all(a.state == "Stable" for client in ids for a in assigned.get(client, []))


def _peers(portal: Portal, service: str) -> list[ServiceProcess]:
    return [
        process(portal.settings, service, n)
        for n in launcher.running_instances(portal.settings, service)
        if process(portal.settings, service, n).is_running()
    ]


@dataclass
class _Leaving:
    """A SIGTERMed instance being watched: what it held and who must hold it after."""

    proc: ServiceProcess
    child: psutil.Process
    others: set[str]
    wanted: dict[tuple[str, str], set[int]]
    moved_s: float | None = None
    exited_s: float | None = None


def _sigterm(portal: Portal, procs: list[ServiceProcess], report: Report) -> None:
    """SIGTERM ``procs`` together (each the only one of its service); measure, for each, until
    the other instances hold every partition it held, and until it exited."""
    kafka = admin_client_options(portal.settings)
    ids = {p.instance_id for proc in procs for p in _peers(portal, proc.service)}

    def stable_assignments() -> dict[str, list[Assigned]] | None:
        assigned = group_assignments(kafka)
        return assigned if _stable(assigned, ids) else None

    before = portal.wait_for(
        stable_assignments, timeout_s=120, what="the groups stable before the SIGTERM"
    )
    leaving: list[_Leaving] = []
    for proc in procs:
        others = {p.instance_id for p in _peers(portal, proc.service)} - {proc.instance_id}
        mine = _holdings(before, {proc.instance_id})
        wanted = {key: mine[key] | theirs for key, theirs in _holdings(before, others).items()}
        for key, parts in mine.items():
            wanted.setdefault(key, parts)
        pid = proc.pid()
        assert pid is not None, f"{proc.name} is not running"
        # Nothing moves when it consumes alone, or nothing.
        moved = None if mine and others else -1.0
        leaving.append(_Leaving(proc, psutil.Process(pid), others, wanted, moved_s=moved))
    started = time.monotonic()
    for item in leaving:
        os.kill(item.child.pid, signal.SIGTERM)
    while any(i.moved_s is None or i.exited_s is None for i in leaving):
        elapsed = time.monotonic() - started
        if elapsed > MOVE_TIMEOUT_S:
            late = [i for i in leaving if i.moved_s is None or i.exited_s is None]
            raise AssertionError(
                "after SIGTERM, partitions not moved or process not exited within "
                f"{MOVE_TIMEOUT_S:.0f}s: "
                + "; ".join(f"{i.proc.name} moved={i.moved_s} exited={i.exited_s}" for i in late)
                + f"\nlog of {late[0].proc.name}:\n{late[0].proc.log_tail()}"
            )
        now = group_assignments(kafka) if any(i.moved_s is None for i in leaving) else {}
        for item in leaving:
            if item.exited_s is None and _gone(item.child):
                item.exited_s = elapsed
            if item.moved_s is None:
                held = _holdings(now, item.others)
                if item.proc.instance_id not in now and all(
                    held.get(key, set()) >= parts for key, parts in item.wanted.items()
                ):
                    item.moved_s = elapsed
        time.sleep(0.05)
    for item in leaving:
        with contextlib.suppress(psutil.Error):
            item.child.wait(timeout=10)  # reaped (this test's child when the fixture started it)
        item.proc.stop()  # only forgets its pid file: the process is gone
        assert item.moved_s is not None and item.exited_s is not None
        if item.moved_s < 0:
            report.say(f"scale: SIGTERM {item.proc.instance_id}: exited after {item.exited_s:.2f}s")
            continue
        report.moves.append(Move(item.proc.instance_id, item.moved_s, item.exited_s))
        report.say(
            f"scale: SIGTERM {item.proc.instance_id}: its partitions consumed by "
            f"{','.join(sorted(item.others))} after {item.moved_s:.2f}s; "
            f"exited after {item.exited_s:.2f}s"
        )


def _gone(child: psutil.Process) -> bool:
    try:
        return child.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_serving(portal: Portal, procs: list[ServiceProcess]) -> None:
    """Until each of ``procs`` is ready and, where it consumes, holds partitions again (its
    group settled)."""
    for proc in procs:
        proc.wait_ready(timeout_s=240)
    kafka = admin_client_options(portal.settings)

    def settled() -> bool:
        assigned = group_assignments(kafka)
        return all(proc.instance_id in assigned or proc.service == "web" for proc in procs)

    portal.wait_for(settled, timeout_s=120, what=f"{[p.name for p in procs]} holding partitions")


def _restart(portal: Portal, procs: list[ServiceProcess], report: Report) -> None:
    """A step of a rollout: ``procs`` (one instance of each service) stopped with SIGTERM, started
    again, serving again."""
    _sigterm(portal, procs, report)
    for proc in procs:
        proc.start()
    _wait_serving(portal, procs)


# -- what readers see --------------------------------------------------------------------------


def _listing(http: httpx.Client, base: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"section": SECTION, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        resp = http.get(f"{base}/v1/subsites/{SOURCE}/articles", params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def _search(http: httpx.Client, base: str, marker: str) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = http.get(
            f"{base}/v1/search",
            params={"q": marker, "source": SOURCE, "sort": "date", "size": 50, "page": page},
        )
        assert resp.status_code == 200, resp.text
        batch = resp.json()["hits"]
        hits.extend(batch)
        if len(batch) < 50:
            return hits
        page += 1


class Readers:
    """Readers on every publishing instance while it all happens: each instance's page cache is
    warm with what was current, so the end state proves it was invalidated."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.stopped = threading.Event()
        self.reads = 0
        self.thread = threading.Thread(target=self._run, name="readers", daemon=True)

    def _run(self) -> None:
        with OutsideClient(timeout=10.0) as http:
            while not self.stopped.wait(0.5):
                for proc in _peers(self.portal, "publishing"):
                    try:
                        http.get(
                            f"{proc.endpoint()}/v1/subsites/{SOURCE}/articles",
                            params={"section": SECTION, "limit": 100},
                        )
                        self.reads += 1
                    except httpx.HTTPError:
                        pass  # restarting

    def __enter__(self) -> Readers:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(15)


@dataclass
class Seen:
    listed: dict[str, dict[str, list[dict[str, Any]]]]  # publishing instance -> id -> entries
    found: dict[str, list[dict[str, Any]]]  # article id -> search hits

    def missing(self, stream: PartnerStream) -> list[str]:
        out = []
        for ext, want in stream.acked.items():
            for instance, listed in self.listed.items():
                entries = listed.get(want.article_id, [])
                if not any(
                    e["revision"] == want.revision and e["title"] == want.title for e in entries
                ):
                    got = [(e["revision"], e["title"]) for e in entries]
                    out.append(f"{ext} r{want.revision} not listed by {instance} ({got})")
            if not any(h["title"] == want.title for h in self.found.get(want.article_id, [])):
                out.append(f"{ext} r{want.revision} not searchable")
        return out


def _observe(portal: Portal, stream: PartnerStream, http: httpx.Client) -> Seen:
    ids = {a.article_id for a in stream.acked.values()}
    listed: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for proc in _peers(portal, "publishing"):
        per: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in _listing(http, proc.endpoint()):
            if item["article_id"] in ids:
                per[item["article_id"]].append(item)
        listed[proc.instance_id] = per
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in _search(http, portal.url("search"), stream.marker):
        found[hit["article_id"]].append(hit)
    return Seen(listed, found)


def _events(kafka_events: Any, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The stream's events on each article topic."""
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in ARTICLE_TOPICS:
        events = asyncio.run(kafka_events.read(spec.name, None))
        out[spec.name] = [
            e
            for e in events
            if isinstance(e.get("data"), dict) and e["data"].get("article_id") in ids
        ]
    return out


def _longest_pause(published: list[dict[str, Any]], start: float, end: float) -> float:
    """The longest time between two publications while the partner pushed (epoch seconds)."""
    times = sorted(
        t
        for t in (datetime.fromisoformat(e["occurred_at"]).timestamp() for e in published)
        if start <= t <= end
    )
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


# -- the test ----------------------------------------------------------------------------------


@pytest.mark.timeout(1800)  # a dozen processes restart one by one on a busy 2-core machine
def test_rolling_restart_and_scaling_lose_and_double_nothing(
    portal: Portal, kafka_events: Any
) -> None:
    report = Report()
    settings = portal.settings
    both = {name: INSTANCES for name in BACKENDS}
    launcher.services_up(settings, instances=both, say=lambda _: None)
    every = [p for name in PROCESSES for p in launcher.services(settings, (name,))]
    _wait_serving(portal, every)
    ingest = [process(settings, "ingest", n).endpoint() for n in range(1, INSTANCES + 1)]
    stream = PartnerStream(
        base_url=ingest[0],
        other_urls=tuple(ingest[1:]),
        api_key=portal.api_key(SOURCE),
        marker=f"sc{uuid.uuid4().hex[:8]}",
        section=SECTION,
        articles=5000,  # more than it gets through: the stream stops when the restarts are over
        pace_s=0.3,
    )
    try:
        with Readers(portal) as readers:
            pushing_since = time.time()
            stream.start()
            stream.wait_progress(10 / len(stream.plan))
            # A rolling restart of every process, one instance of each at a time (as a release
            # rolls every Deployment at once, each one pod after the other).
            for n in range(1, INSTANCES + 1):
                wave = [process(settings, name, n) for name in PROCESSES]
                _restart(portal, [p for p in wave if p.is_running()], report)
            # Scale up mid-stream, let the new instances take partitions and work a while,
            # then scale down again (their partitions move back).
            launcher.services_up(settings, instances=SCALED_UP, say=lambda _: None)
            _wait_serving(portal, [p for n in SCALED_UP for p in launcher.services(settings, (n,))])
            done = stream.progress()
            stream.wait_progress(done + 20 / len(stream.plan), timeout_s=180)
            _sigterm(portal, [process(settings, n, c) for n, c in SCALED_UP.items()], report)
            stream.wait_progress(stream.progress() + 10 / len(stream.plan), timeout_s=180)
            stream.stop()
            stream.join()
            pushing_until = time.time()
        assert not stream.failures, stream.failures

        # Drained: every acknowledged article public on every publishing instance and found.
        http = portal.http
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        seen = _observe(portal, stream, http)
        while seen.missing(stream) and time.monotonic() < deadline:
            time.sleep(1.0)
            seen = _observe(portal, stream, http)
        missing = seen.missing(stream)
        ids = {a.article_id for a in stream.acked.values()}
        events = _events(kafka_events, ids)
    finally:
        stream.stop()
        launcher.services_up(settings, instances={name: 1 for name in BACKENDS}, say=lambda _: None)

    # Every event once on its topic (several relays share each outbox).
    repeated = {
        topic: sum(n - 1 for n in Counter(e["event_id"] for e in found).values())
        for topic, found in events.items()
    }
    # And every revision published once (one publication per article and revision).
    publications: dict[tuple[str, int, str], set[str]] = defaultdict(set)
    for e in events[ARTICLE_PUBLISHED.name]:
        d = e["data"]
        publications[(d["article_id"], d["revision"], d["state"])].add(e["event_id"])
    doubled = sum(len(v) - 1 for v in publications.values())
    listed_twice = {
        f"{instance}:{aid}": len(v)
        for instance, listed in seen.listed.items()
        for aid, v in listed.items()
        if len(v) > 1
    }
    found_twice = {aid: len(v) for aid, v in seen.found.items() if len(v) > 1}
    published = sum(
        1
        for a in stream.acked.values()
        if all(
            any(e["revision"] == a.revision for e in listed.get(a.article_id, []))
            for listed in seen.listed.values()
        )
    )
    searchable = sum(
        1
        for a in stream.acked.values()
        if any(h["title"] == a.title for h in seen.found.get(a.article_id, []))
    )
    duplicates = (
        sum(repeated.values())
        + doubled
        + sum(n - 1 for n in listed_twice.values())
        + sum(n - 1 for n in found_twice.values())
    )
    pause = _longest_pause(events[ARTICLE_PUBLISHED.name], pushing_since, pushing_until)
    slowest = max(report.moves, key=lambda m: m.moved_s)
    report.say(
        f"scale total: pushed={len(stream.acked)} published={published} "
        f"searchable={searchable} duplicates={duplicates} lost={len(missing)} "
        f"(requests={stream.requests_acked} retries={stream.retries} reads={readers.reads}, "
        f"{len(report.moves)} partition moves after SIGTERM, the slowest {slowest.moved_s:.2f}s "
        f"({slowest.instance}), longest pause in publishing {pause:.1f}s)"
    )

    assert stream.acked, "the partner got nothing acknowledged"
    assert not missing, f"lost: {missing[:20]} ({len(missing)} in all)"
    assert not any(repeated.values()), f"events on their topic more than once: {repeated}"
    assert doubled == 0, f"{doubled} revisions published twice"
    assert not listed_twice, f"listed more than once: {listed_twice}"
    assert not found_twice, f"found more than once by search: {found_twice}"
    assert set(seen.listed) == {f"publishing-{n}" for n in range(1, INSTANCES + 1)}
