"""What the edge cache promises beyond speed, measured under load.

* freshness: while wrk loads the edge, an article of the data set is edited or retracted (a
  review decision on Kafka, as moderation sends it); the time from sending it until the edge
  serves the new state (the new title, or 410). Publishing consumes it, commits, relays
  article.published; the purger purges the edge; the edge fetches the page again. Each trial
  then restores the article (untimed), so the data set stays as loaded.
* origin down: publishing is stopped and every cached page made stale (a soft purge of every
  key); the edge must keep answering from its stale copies (stale-if-error) with no error.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from dataset import article_for, article_numbers, reviewed_event
from tools import BackgroundWrk, wrk

from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_REVIEWED
from portal_launcher import stack as launcher
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.components.varnish import purge_edge
from portal_launcher.services import ServiceProcess, service_port
from portal_launcher.settings import StackSettings

POLL_S = 0.005  # how often the edge is asked during a trial
TRIAL_TIMEOUT_S = 30.0


@dataclass
class Load:
    """How wrk loads the edge meanwhile."""

    paths_file: Path
    threads: int
    connections: int
    timeout: int


@dataclass
class Trial:
    kind: str  # "publish" (an edit) or "retract"
    ms: float  # until the edge showed it
    origin_ms: float  # until publishing itself showed it


@dataclass
class Freshness:
    trials: list[Trial] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float]:
            if not values:
                return {}
            return {"p50": round(statistics.median(values), 1), "max": round(max(values), 1)}

        every = [t.ms for t in self.trials]
        return {
            "trials": len(self.trials),
            "freshness_ms": stats(every),
            "publish_ms": stats([t.ms for t in self.trials if t.kind == "publish"]),
            "retract_ms": stats([t.ms for t in self.trials if t.kind == "retract"]),
            "samples_ms": [round(ms, 1) for ms in every],
            # Publishing's part (consume, commit); the rest is relay, purger and edge.
            "origin_ms": stats([t.origin_ms for t in self.trials]),
            "origin_samples_ms": [round(t.origin_ms, 1) for t in self.trials],
            "load_during": self.load,
        }


class Publisher:
    def __init__(self, settings: StackSettings, articles: int) -> None:
        self.settings = settings
        self.numbers = article_numbers(articles)
        self.origin = f"http://{settings.host}:{service_port(settings, 'publishing')}"
        self.producer = AIOKafkaProducer(**admin_client_options(settings), acks="all")

    async def send(self, i: int, revision: int, *, title: str | None, retract: bool) -> None:
        event = reviewed_event(i, revision, title=title, retract=retract)
        await self.producer.send_and_wait(
            ARTICLE_REVIEWED.name, encode(event), key=event.subject.encode()
        )


async def _until(
    http: httpx.AsyncClient, url: str, done: Any, timeout_s: float = TRIAL_TIMEOUT_S
) -> float:
    """When (``time.monotonic()``) ``done(response)`` first held for ``url``."""
    started = time.monotonic()
    while True:
        resp = await http.get(url)
        if done(resp):
            return time.monotonic()
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{url}: the change did not show within {timeout_s:.0f}s")
        await asyncio.sleep(POLL_S)


async def freshness(
    settings: StackSettings, slugs: list[str], articles: int, trials: int, load: Load
) -> Freshness:
    """Edit and retract articles (alternately) under load; time until the edge shows it."""
    publisher = Publisher(settings, articles)
    result = Freshness()
    background = BackgroundWrk(
        settings.edge_url, load.paths_file, load.threads, load.connections, load.timeout
    )
    await publisher.producer.start()
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            await asyncio.sleep(1.0)  # the load is on
            for n, slug in enumerate(slugs[:trials]):
                kind = "publish" if n % 2 == 0 else "retract"
                result.trials.append(await _trial(publisher, http, slug, kind, n))
    finally:
        result.load = background.stop()
        await publisher.producer.stop()
    return result


async def _trial(
    publisher: Publisher, http: httpx.AsyncClient, slug: str, kind: str, n: int
) -> Trial:
    edge = f"{publisher.settings.edge_url}/v1/articles/{slug}"
    origin = f"{publisher.origin}/v1/articles/{slug}"
    current = (await http.get(origin)).json()
    i = publisher.numbers[current["article_id"]]
    original = article_for(i)[2].title
    revision = int(current["revision"])
    await _until(http, edge, lambda r: r.status_code == 200)  # cached at the edge
    await _until(http, edge, lambda r: r.headers.get("x-cache") == "HIT")

    title = f"{original} (cập nhật {n + 1})" if kind == "publish" else None

    def shown(r: httpx.Response) -> bool:
        if title is None:
            return r.status_code == 410
        return r.status_code == 200 and r.json()["title"] == title

    started = time.monotonic()
    await publisher.send(i, revision + 1, title=title, retract=title is None)
    # Publishing's own answer is watched too: the difference is the relay, the purger and the
    # edge's fetch.
    origin_at, edge_at = await asyncio.gather(
        _until(http, origin, shown), _until(http, edge, shown)
    )
    origin_ms, elapsed_ms = (origin_at - started) * 1000, (edge_at - started) * 1000

    # Back as loaded (untimed): the original article, published again, at the edge too.
    await publisher.send(i, revision + 2, title=original, retract=False)
    for url in (origin, edge):
        await _until(
            http,
            url,
            lambda r: r.status_code == 200 and int(r.json()["revision"]) == revision + 2,
        )
    return Trial(kind, elapsed_ms, origin_ms)


def origin_down(
    settings: StackSettings, paths_file: Path, threads: int, connections: int, seconds: int
) -> dict[str, Any]:
    """Publishing stopped, every cached page stale: the edge answers from stale copies."""
    publishing = ServiceProcess(settings, "publishing")
    publishing.stop()
    try:
        # Every public page carries `site` (and the home page `home`): all of them go stale,
        # so each request needs the origin, which is gone.
        stale = purge_edge(settings, ["site", "home", "sitemap"], hard=False)
        figures = wrk(settings.edge_url, paths_file, threads, connections, seconds, 10)
    finally:
        launcher.start_one(settings, "publishing", say=lambda _: None)
    return {
        "seconds": seconds,
        "objects_made_stale": stale,
        "origin_down_errors": figures["errors"] + figures["non_2xx"],
        **figures,
    }
