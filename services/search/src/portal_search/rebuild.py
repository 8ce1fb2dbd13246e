"""Rebuild of the index with no downtime.

1. create ``<alias>-v<time>`` and point ``<alias>-building`` at it (live writes go there too);
2. replay ``article.published`` from the beginning to the end offsets into it;
3. refresh it, then move the alias to it and drop the building alias in one atomic update;
4. delete the old index after a short grace.
Searches read the old index until step 3 and the new one after it; external versioning makes
the order of replayed and live writes irrelevant.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_runtime.kafka_security import client_options
from portal_runtime.logs import get_logger
from portal_runtime.replay import replay
from portal_search.domain import IndexOp, InvalidEvent, document_for
from portal_search.index import ArticleIndex, IndexBusy
from portal_search.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class RebuildResult:
    index: str
    previous_index: str | None
    documents: int
    retracted: int
    replayed: int
    skipped: int
    took_ms: int


class Rebuilder:
    def __init__(self, index: ArticleIndex, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self._lock = asyncio.Lock()

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
