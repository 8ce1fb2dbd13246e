"""Rebuild of the index with no downtime.

1. create ``<alias>-v<time>`` and point ``<alias>-building`` at it (live writes go there too);
2. replay ``article.published`` from the beginning to the end offsets into it;
3. refresh it, then move the alias to it and drop the building alias in one atomic update;
4. delete the old index after a short grace.
Searches read the old index until step 3 and the new one after it; external versioning makes
the order of replayed and live writes irrelevant.

A rebuild of a big topic outlasts an HTTP request: ``start_job`` runs it in the background and
``job`` tells how it went (the last ``JOBS_KEPT`` are remembered, in this instance only).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_runtime.clock import utcnow
from portal_runtime.kafka_security import client_options
from portal_runtime.logs import get_logger
from portal_runtime.replay import replay
from portal_search.domain import IndexOp, InvalidEvent, document_for
from portal_search.index import ArticleIndex, IndexBusy
from portal_search.settings import Settings

log = get_logger(__name__)

JOBS_KEPT = 20


@dataclass(frozen=True)
class RebuildResult:
    index: str
    previous_index: str | None
    documents: int
    retracted: int
    replayed: int
    skipped: int
    took_ms: int


@dataclass
class RebuildJob:
    """A rebuild running in the background, and then its outcome."""

    id: str
    started_at: datetime
    state: Literal["running", "succeeded", "failed"] = "running"
    finished_at: datetime | None = None
    result: RebuildResult | None = None
    error: str | None = None
    task: asyncio.Task[RebuildResult] | None = field(default=None, repr=False)


class Rebuilder:
    def __init__(self, index: ArticleIndex, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self._lock = asyncio.Lock()
        self._jobs: dict[str, RebuildJob] = {}

    def start_job(self) -> RebuildJob:
        """Start a rebuild in the background; IndexBusy if one runs in this instance."""
        if self._lock.locked() or any(j.state == "running" for j in self._jobs.values()):
            raise IndexBusy("a reindex is already running in this instance")
        job = RebuildJob(id=uuid.uuid4().hex, started_at=utcnow())
        job.task = asyncio.create_task(self.run())
        job.task.add_done_callback(lambda task: self._finished(job, task))
        self._jobs[job.id] = job
        while len(self._jobs) > JOBS_KEPT:  # the oldest finished ones go first
            oldest = next((k for k, j in self._jobs.items() if j.state != "running"), None)
            if oldest is None:
                break
            del self._jobs[oldest]
        return job

    def job(self, job_id: str) -> RebuildJob | None:
        return self._jobs.get(job_id)

    @staticmethod
    def _finished(job: RebuildJob, task: asyncio.Task[RebuildResult]) -> None:
        job.finished_at = utcnow()
        job.task = None
        if task.cancelled():
            job.state, job.error = "failed", "cancelled (the service stopped)"
        elif (exc := task.exception()) is not None:
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            job.state, job.result = "succeeded", task.result()

    async def run(self) -> RebuildResult:
        if self._lock.locked():
            raise IndexBusy("a reindex is already running in this instance")
        async with self._lock:
            return await self._run()

    async def _run(self) -> RebuildResult:
        started = time.perf_counter()
        old: str | None = await self.index.ensure()
        new = await self.index.start_build(stale_after_s=self.settings.reindex_stale_after_s)
        log.info("reindex_started", index=new, previous=old)
        invalid = 0

        async def load(events: list[ArticlePublishedEvent]) -> None:
            nonlocal invalid
            ops: list[IndexOp] = []
            for event in events:
                try:
                    ops.append(
                        document_for(event.data, max_body_chars=self.settings.index_max_body_chars)
                    )
                except InvalidEvent:
                    invalid += 1
            await self.index.bulk_write(ops)

        try:
            stats = await replay(
                client_options(self.settings),
                ARTICLE_PUBLISHED.name,
                ArticlePublishedEvent,
                load,
                client_id="search-reindex",
                batch_size=self.settings.reindex_batch_size,
                stall_timeout_s=self.settings.reindex_stall_timeout_s,
            )
            await self.index.finish_build(new)
            # The alias may have moved since ensure() only through another rebuild, which the
            # building alias excludes; read it again anyway so the swap removes the right one.
            old = await self.index.current_index()
            await self.index.swap(new, old)
        except BaseException:
            log.exception("reindex_failed", index=new)
            await asyncio.shield(self.index.abandon_build(new))
            raise
        if old is not None and old != new:
            await self.index.delete_index(old, grace_s=self.settings.reindex_delete_grace_s)
        documents = await self.index.count(new)
        total = await self.index.count(new, published_only=False)
        result = RebuildResult(
            index=new,
            previous_index=old,
            documents=documents,
            retracted=total - documents,
            replayed=stats.messages,
            skipped=stats.skipped + invalid,
            took_ms=round((time.perf_counter() - started) * 1000),
        )
        log.info("reindex_done", **result.__dict__)
        return result
