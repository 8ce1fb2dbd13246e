"""The edge purger: a process of its own (`python -m portal_publishing.purger`) that consumes
`article.published` and invalidates, on every edge cache, exactly the surrogate keys the event
touches (``surrogate.touched_by``).

Why a process of its own, next to publishing rather than inside it: its work and its failures
are not publishing's. Publishing keeps serving and publishing while the purger is down (the
edge's TTLs bound how stale it gets); the purger, in consumer group ``publishing-edge-purger``, picks up
from its committed offset when it is back. It keeps no state: a purge is idempotent, so a
replayed event only purges again. Its code stays in publishing's package because the keys a
response carries and the keys an event touches are one piece of knowledge (surrogate.py).

A fetch of the edge that started before publishing committed a change can still bring the old
page back after the purge. So each purge is repeated once, ``EDGE_REPURGE_AFTER_S`` later (or up
to half that again: the purges falling due meanwhile are repeated with it, in one purge).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI
from pydantic import Field, SecretStr

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_publishing.db import outbox
from portal_publishing.edge import Edge, parse_urls
from portal_publishing.surrogate import Purge, touched_by
from portal_runtime.batch import Message
from portal_runtime.consumer import Subscription
from portal_runtime.logs import get_logger
from portal_runtime.metrics import SECONDS_BUCKETS, meter
from portal_runtime.serve import serve
from portal_runtime.service import Service
from portal_runtime.settings import ServiceSettings
from portal_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)

GROUP = "publishing-edge-purger"

PURGE_DELAY = meter.create_histogram(
    "portal.edge.purge.delay",
    unit="s",
    description="From an article.published event entering Kafka to its purge done on every "
    "edge (the purger's share of how long the edge shows an outdated page).",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
)

DESCRIPTION = """\
Purges the edge cache (Varnish, surrogate keys) when articles are published, edited or
retracted. Health and metrics only; it consumes `article.published`.
"""


class PurgerSettings(ServiceSettings):
    service_name: str = "edge-purger"
    http_port: int = 8008
    edge_purge_urls: str = Field(
        default="http://127.0.0.1:6081",
        description="Every edge cache to purge (base URLs, comma-separated).",
    )
    edge_purge_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token the edges expect on PURGE."
    )
    edge_purge_timeout_s: float = Field(default=2.0, gt=0)
    # A second purge this long after the first, for edge fetches in flight at the first one;
    # 0 = none.
    edge_repurge_after_s: float = Field(default=2.0, ge=0)
    # A batch of article.published events gathers for 250 ms after its first, not the
    # pipeline's 20: one purge request per edge and one batch span for many articles, where the
    # pipeline's pace made a batch of a few events each; the edge shows a change at most this
    # much later. (The runtime's own setting, KAFKA_BATCH_MAX_WAIT_MS, with this default here.)
    kafka_batch_max_wait_ms: int = Field(default=250, ge=0, le=10_000)


class Purger:
    def __init__(
        self,
        edge: Edge,
        repurge_after_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.edge = edge
        self.repurge_after_s = repurge_after_s
        self.clock = clock
        self.sleep = sleep
        self._due: list[tuple[float, Purge]] = []  # purges to repeat and when, oldest first
        self._repeating: asyncio.Task[None] | None = None

    def subscription(self) -> Subscription[ArticlePublishedEvent]:
        return Subscription(
            group=GROUP, topics=[ARTICLE_PUBLISHED], handler=self.handle, inbox=False
        )

    async def handle(self, batch: list[Message[ArticlePublishedEvent]], uow: UnitOfWork) -> None:
        """One purge for the batch; an edge that cannot purge fails it (retried, then again)."""
        purges = [touched_by(message.event.data) for message in batch]
        purge = merged(purges)
        if not purge.keys:
            return
        objects = await self.edge.purge(purge)
        for message, one in zip(batch, purges, strict=True):
            delay_s = _since_produced(message)
            if delay_s is not None:
                PURGE_DELAY.record(delay_s, {"kind": "hard" if one.hard else "soft"})
        log.info(
            "edge_purged",
            events=len(batch),
            soft=" ".join(purge.soft),
            hard=" ".join(purge.hard),
            objects=objects,
        )
        if self.repurge_after_s > 0:
            self._due.append((self.clock() + self.repurge_after_s, purge))
            if self._repeating is None or self._repeating.done():
                self._repeating = asyncio.create_task(self._repeat(), name="edge-repurge")

    async def _repeat(self) -> None:
        """Repeat each purge once it falls due, waiting half the delay more so that the purges
        falling due meanwhile go with it, merged: at most one repeat per half delay, however
        many batches there were."""
        while self._due:
            first = self._due[0][0]
            await self.sleep(max(0.0, first + self.repurge_after_s / 2 - self.clock()))
            now = self.clock()
            due = [purge for when, purge in self._due if when <= now]
            self._due = [(when, purge) for when, purge in self._due if when > now]
            if not due:
                continue
            again = merged(due)
            try:
                await self.edge.purge(again)
            except ConnectionError as exc:  # best effort: the first purges went through
                log.warning("edge_repurge_failed", keys=" ".join(again.keys), error=str(exc))

    async def run(self) -> None:
        """A background job of the service: holds the edge client until shutdown."""
        try:
            await asyncio.Event().wait()
        finally:
            if self._repeating is not None:
                self._repeating.cancel()
            await self.edge.client.aclose()


def merged(purges: list[Purge]) -> Purge:
    """The keys of several purges, each once: a key any of them removes is removed, not only
    marked stale."""
    hard = tuple(dict.fromkeys(k for p in purges for k in p.hard))
    removed = set(hard)
    soft = tuple(dict.fromkeys(k for p in purges for k in p.soft if k not in removed))
    return Purge(soft=soft, hard=hard)


def _since_produced(message: Message[ArticlePublishedEvent]) -> float | None:
    timestamp = message.record.timestamp_ms
    if timestamp is None or timestamp <= 0:
        return None
    return max(0.0, time.time() - timestamp / 1000)


def create_app(settings: PurgerSettings | None = None) -> FastAPI:
    settings = settings or PurgerSettings()
    # Publishing's second process, with publishing's credentials: its database (migrated by
    # publishing) holds the purger's dead letters in publishing's outbox.
    service = Service(settings, migrations_dir=None, outbox=outbox)
    edge = Edge(
        parse_urls(settings.edge_purge_urls),
        settings.edge_purge_token.get_secret_value(),
        httpx.AsyncClient(timeout=settings.edge_purge_timeout_s),
    )
    purger = Purger(edge, settings.edge_repurge_after_s)
    service.consume(purger.subscription())
    service.background.append(purger.run)
    return service.create_app(title="Cổng TTĐT — Edge purger", description=DESCRIPTION)


def main() -> None:
    settings = PurgerSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
