"""What the pipeline benchmark reads and computes, apart from the scenarios themselves.

* percentiles and the steady slope of completions (throughput without the ramp-up and the tail);
* each process's CPU time (``/proc/<pid>/stat``, through psutil), per service and for the stack;
* each service database's transactions (``pg_stat_database``);
* how busy the machine's cores were during the steady slope (``/proc/stat``);
* the articles searchable in OpenSearch, polled by id;
* where an article's time went, hop by hop (ingest's journey of its events).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import asyncpg
import psutil
from opensearchpy import AsyncOpenSearch

from portal_launcher import stack as launcher
from portal_launcher.credentials import stack_secrets
from portal_launcher.services import BACKENDS as SERVICES
from portal_launcher.settings import StackSettings


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def steady_rate(times: Iterable[float], low: float = 0.1, high: float = 0.9) -> float:
    """Completions per second between the ``low`` and ``high`` fractions of all completions.

    The first and last tenth are the ramp-up (the first articles cross an empty pipeline) and
    the tail (the last ones wait for the slowest stage); the slope between is what it sustains.
    """
    ordered = sorted(times)
    n = len(ordered)
    if n < 10:
        return float("nan")
    first, last = int(n * low), math.ceil(n * high) - 1
    elapsed = ordered[last] - ordered[first]
    return (last - first) / elapsed if elapsed > 0 else float("nan")


def latency_ms(start: dict[str, float], end: dict[str, float]) -> list[float]:
    return [(end[k] - start[k]) * 1000 for k in end if k in start]


# -- CPU, transactions ----------------------------------------------------------------------------


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        total = 0.0
        # A process's own CPU, plus what its children used that have exited since (reaped):
        # PostgreSQL's autovacuum workers and closed backends come and go within a run.
        for p in (proc, *proc.children(recursive=True)):
            times = p.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        return total
    except psutil.Error:
        return 0.0


# HotSpot's compiler threads (their names as the kernel keeps them, cut to 15 characters).
_JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
JIT_SUFFIX = " jit"
BENCH_CLIENT = "bench client"


def _jit_cpu_s(pid: int | None) -> float:
    """CPU seconds a JVM spent compiling hot code: the cost of its first minutes of work (a
    freshly started OpenSearch or Kafka), not of each message."""
    if pid is None:
        return 0.0
    try:
        pids = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return 0.0
    total = 0.0
    for task in (t for p in pids for t in _tasks(p)):
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            if stat[stat.index("(") + 1 : stat.rindex(")")] in _JIT_THREADS:
                fields = stat.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return total


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(settings: StackSettings) -> dict[str, float]:
    """CPU seconds used so far by each service process and each stack component, and (as
    ``<component> jit``) the part of a JVM's that its compiler threads used."""
    out: dict[str, float] = {}
    for comp in launcher.all_components(settings):
        name = comp.name.removeprefix("service-")
        out[name] = _cpu_s(comp.pid())
        jit = _jit_cpu_s(comp.pid())
        if jit:
            out[name + JIT_SUFFIX] = jit
    # The bench itself (pushing, polling OpenSearch, receiving spans) shares the two cores with
    # what it measures: reported apart, never counted as the pipeline's.
    out[BENCH_CLIENT] = time.process_time()
    return out


async def _connect(settings: StackSettings, database: str) -> asyncpg.Connection:
    """The stack's PostgreSQL as its superuser, on ``database``."""
    return await asyncpg.connect(
        host=settings.host,
        port=settings.postgres_port,
        user="postgres",
        password=stack_secrets(settings).postgres_password,
        database=database,
    )


async def transactions(settings: StackSettings) -> dict[str, int]:
    """Committed and rolled-back transactions so far, per service database."""
    conn = await _connect(settings, "postgres")
    try:
        rows = await conn.fetch(
            "SELECT datname, xact_commit + xact_rollback AS n FROM pg_stat_database "
            "WHERE datname = ANY($1::text[])",
            list(SERVICES),
        )
    finally:
        await conn.close()
    return {r["datname"]: int(r["n"]) for r in rows}


@dataclass
class Usage:
    """Resources used between ``start`` and ``stop``, per service."""

    cpu_s: dict[str, float] = field(default_factory=dict)
    xacts: dict[str, int] = field(default_factory=dict)
    spans: dict[str, int] = field(default_factory=dict)

    def per_article(self, what: dict[str, float] | dict[str, int], n: int) -> dict[str, float]:
        per = {s: what.get(s, 0) / n for s in SERVICES}
        per["total"] = sum(per.values())
        return per


class Meter:
    def __init__(self, settings: StackSettings, spans: object | None) -> None:
        self.settings = settings
        self.spans = spans  # an OtlpReceiver in counting mode, or None

    def _span_counts(self) -> dict[str, int]:
        counted = getattr(self.spans, "counted", None)
        return dict(counted()) if counted is not None else {}

    async def snapshot(self) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
        return (
            cpu_seconds(self.settings),
            await transactions(self.settings),
            self._span_counts(),
        )

    @staticmethod
    def between(
        before: tuple[dict[str, float], dict[str, int], dict[str, int]],
        after: tuple[dict[str, float], dict[str, int], dict[str, int]],
    ) -> Usage:
        def delta(
            a: dict[str, float] | dict[str, int], b: dict[str, float] | dict[str, int]
        ) -> dict:  # type: ignore[type-arg]
            return {k: b[k] - a.get(k, 0) for k in b}

        return Usage(
            delta(before[0], after[0]), delta(before[1], after[1]), delta(before[2], after[2])
        )


# -- background watchers --------------------------------------------------------------------------


class Watcher:
    """A loop that watches something for the run, as a task of the bench's event loop."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        raise NotImplementedError


# -- the machine's cores ------------------------------------------------------------------------


def _proc_stat() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot; idle and I/O wait are not busy."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    total = sum(fields[:8])  # guest time is counted within user time already
    return total - fields[3] - fields[4], total


class CoreUse(Watcher):
    """Samples how busy the machine's cores are, so that a stretch of a run (the steady slope)
    can say how much of the CPU it used: a pipeline whose cores sit idle while articles wait
    is held up by something other than CPU (pacing, a stage waiting on another). It is the
    whole machine's figure: on a shared machine, other work counts as busy."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, int, int]] = []  # (when, busy, total)

    async def _run(self) -> None:
        while True:
            self.samples.append((time.time(), *_proc_stat()))
            await asyncio.sleep(self.interval_s)

    def busy_share(self, start: float, end: float) -> float:
        """The share of all cores' time that was busy between ``start`` and ``end`` (the
        samples nearest inside them), or NaN without two samples there."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][2] == inside[0][2]:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / (inside[-1][2] - inside[0][2])


def steady_span(times: Iterable[float], low: float = 0.1, high: float = 0.9) -> tuple[float, float]:
    """When the ``low`` and ``high`` fractions of all completions were reached (``steady_rate``'s
    stretch)."""
    ordered = sorted(times)
    n = len(ordered)
    if n < 10:
        return float("nan"), float("nan")
    return ordered[int(n * low)], ordered[math.ceil(n * high) - 1]


# -- searchable ---------------------------------------------------------------------------------


def spread_over(start: float, end: float, count: int) -> list[float]:
    """``count`` times spread evenly over ``(start, end]``, each the middle of its share: when
    the documents one poll found became searchable, in the order they were indexed."""
    step = (end - start) / count if count else 0.0
    return [start + (i + 0.5) * step for i in range(count)]


class Searchable(Watcher):
    """Watches OpenSearch for the ids it waits for; records when each became searchable.

    Each poll is a search, as a reader's: the documents with a sequence number above the
    highest one seen ``lookback_s`` ago, by their ``article_id`` doc values, never the stored
    document. The cost of a poll follows the documents indexed lately, not the thousands still
    awaited (a query naming every pending id cost OpenSearch about a fifth of its CPU in the
    throughput run, counted against the pipeline). Sequence numbers are per shard, and the
    local stack's index has one. Documents become visible in sequence order, except across
    bulk requests indexed side by side (the search service sends one at a time): the lookback
    reads again what became visible in the last seconds.

    A document found by a poll became searchable after the previous poll was sent (it was not
    found then) and before this one was sent (or while it ran). The time recorded is the middle
    of that span, not the poll's answer: the polling step and the query's own time would
    otherwise add about half an interval plus a round trip to every latency. The documents one
    poll finds are spread evenly over the span, in the order they were indexed (``spread_over``):
    one time for all of them put every completion on the polls' grid, and the throughput slope
    then came out as N / (whole seconds), 295.9 or 307.7 articles/s and nothing between.
    """

    def __init__(
        self, opensearch_url: str, interval_s: float = 0.25, *, lookback_s: float = 2.0
    ) -> None:
        self.url = opensearch_url
        self.interval_s = interval_s
        self.lookback_s = lookback_s
        # (when a poll was sent, the highest sequence number seen by then), oldest first.
        self._seen: collections.deque[tuple[float, int]] = collections.deque()
        self.pending: set[str] = set()
        self.at: dict[str, float] = {}
        self.watched_at: dict[str, float] = {}
        self._last_sent: float | None = None

    def watch(self, ids: Iterable[str]) -> None:
        now = time.time()
        for i in ids:
            if i not in self.at and i not in self.pending:
                self.pending.add(i)
                self.watched_at[i] = now

    async def until_all(self, ids: Iterable[str], timeout_s: float) -> bool:
        wanted = set(ids)
        deadline = time.monotonic() + timeout_s
        while not wanted <= self.at.keys():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    async def _run(self) -> None:
        client = AsyncOpenSearch(hosts=[self.url], timeout=30)
        try:
            while True:
                started = time.monotonic()
                if self.pending:
                    await self._poll(client)
                else:
                    self._last_sent = None
                await asyncio.sleep(max(0.02, self.interval_s - (time.monotonic() - started)))
        finally:
            await client.close()

    async def _poll(self, client: AsyncOpenSearch, page: int = 5000) -> None:
        sent = time.time()
        previous, self._last_sent = self._last_sent, sent
        while len(self._seen) > 1 and self._seen[1][0] <= sent - self.lookback_s:
            self._seen.popleft()
        # The first poll reads the whole index once; later ones from the oldest kept.
        after = self._seen[0][1] if self._seen else -1
        top = self._seen[-1][1] if self._seen else -1
        found: list[str] = []
        while True:
            try:
                resp = await client.search(
                    index="articles",
                    body={
                        "query": {"range": {"_seq_no": {"gt": after}}},
                        "sort": [{"_seq_no": "asc"}],
                        "size": page,
                        "stored_fields": "_none_",
                        "docvalue_fields": ["article_id"],
                        "track_total_hits": False,
                    },
                )
            except Exception:  # the index is not there yet, or OpenSearch is busy: next time
                self._last_sent = previous
                return
            hits = resp["hits"]["hits"]
            for hit in hits:
                found.extend(hit.get("fields", {}).get("article_id", []))
                after = int(hit["sort"][0])
                top = max(top, after)
            if len(hits) < page:
                break
        self._seen.append((sent, top))
        fresh = [aid for aid in found if aid in self.pending]
        spread = spread_over(previous or sent, sent, len(fresh))
        for aid, at in zip(fresh, spread, strict=True):
            watched = min(self.watched_at.get(aid, sent), sent)
            if previous is None or at < watched:
                # Not searchable before it was pushed (watched), nor known to be since a poll.
                at = (watched + sent) / 2
            self.at.setdefault(aid, at)
            self.pending.discard(aid)


# -- where the time went --------------------------------------------------------------------------

# The article topics in pipeline order; ingest's journey consumer records one row per event with
# when its producer made it (occurred_at) and when it was produced to Kafka (logged_at, the
# record's timestamp, set by the producing service's outbox relay).
JOURNEY_TOPICS = ("article.ingested", "article.normalized", "article.reviewed", "article.published")
HOPS = (
    "ingest: push -> received",
    "ingest: received -> relayed",
    "normalize: wait + work",
    "normalize: commit + relay",
    "moderation: wait + work",
    "moderation: commit + relay",
    "publishing: wait + work",
    "publishing: commit + relay",
    "search: wait + bulk + refresh",
)


async def journeys(
    settings: StackSettings, ids: Sequence[str], timeout_s: float = 30.0
) -> dict[str, dict[str, tuple[float, float | None]]]:
    """Per article, per topic: (occurred_at, logged_at) of its first event there, in epoch
    seconds, from ingest's journey table; waits (up to ``timeout_s``) for every article's last
    event to be recorded (the journey consumer runs beside the pipeline)."""
    conn = await _connect(settings, "ingest")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await conn.fetch(
                "SELECT DISTINCT ON (article_id, topic) article_id, topic, occurred_at, logged_at "
                "FROM article_journey WHERE article_id = ANY($1::text[]) AND topic = ANY($2) "
                "ORDER BY article_id, topic, revision, occurred_at",
                list(ids),
                list(JOURNEY_TOPICS),
            )
            complete = sum(1 for r in rows if r["topic"] == JOURNEY_TOPICS[-1])
            if complete >= len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
    finally:
        await conn.close()
    out: dict[str, dict[str, tuple[float, float | None]]] = {}
    for r in rows:
        logged = r["logged_at"].timestamp() if r["logged_at"] is not None else None
        out.setdefault(r["article_id"], {})[r["topic"]] = (r["occurred_at"].timestamp(), logged)
    return out


def hop_latencies(
    pushed_at: dict[str, float],
    searchable_at: dict[str, float],
    journey: dict[str, dict[str, tuple[float, float | None]]],
) -> dict[str, list[float]]:
    """Milliseconds spent in each hop (``HOPS``) by each article whose journey is complete.

    A stage's "wait + work" runs from the previous event's record timestamp to the moment the
    stage made its own event (Kafka fetch, the batch's gathering, decoding, the handler); its
    "commit + relay" from then to its own record timestamp (the transaction's commit, the
    hand-over to the relay, the relay's round). Search's hop ends when the bench saw the article
    searchable: its consumer, the ``_bulk`` and OpenSearch's refresh.
    """
    out: dict[str, list[float]] = {h: [] for h in HOPS}
    for aid, stages in journey.items():
        if aid not in pushed_at or aid not in searchable_at:
            continue
        if any(t not in stages or stages[t][1] is None for t in JOURNEY_TOPICS):
            continue
        marks = [pushed_at[aid]]
        for topic in JOURNEY_TOPICS:
            occurred, logged = stages[topic]
            marks += [occurred, logged or occurred]
        marks.append(searchable_at[aid])
        for hop, (a, b) in zip(HOPS, itertools.pairwise(marks), strict=True):
            out[hop].append((b - a) * 1000)
    return out
