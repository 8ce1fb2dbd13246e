"""Rebuild of the ``questions`` index from the compacted ``question.answered`` log.

The same steps as the article rebuild (``rebuild.py``): a new physical index behind the
building alias (live writes go there too), a replay of the topic from the beginning to the end
offsets taken at the start (own consumer, no group), then one atomic alias swap. External
versioning makes the order of replayed and live writes irrelevant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, status
from opensearchpy.exceptions import TransportError
from pydantic import BaseModel

from portal_contracts.questions import QuestionAnsweredEvent
from portal_contracts.topics import QUESTION_ANSWERED
from portal_runtime.kafka_security import client_options
from portal_runtime.logs import get_logger
from portal_runtime.replay import ReplayStalled, ReplayStats, replay
from portal_search.index import IndexBusy
from portal_search.questions import QuestionIndex, question_document
from portal_search.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class QuestionsRebuilt:
    index: str
    previous_index: str | None
    documents: int
    replayed: int
    skipped: int
    took_ms: int


async def _replay(settings: Settings, index: QuestionIndex) -> ReplayStats:
    """Write every question.answered event up to the current end offsets into the new index."""

    async def load(events: list[QuestionAnsweredEvent]) -> None:
        await index.bulk_write([question_document(e.data) for e in events])

    return await replay(
        client_options(settings),
        QUESTION_ANSWERED.name,
        QuestionAnsweredEvent,
        load,
        client_id="search-questions-reindex",
        batch_size=settings.reindex_batch_size,
        stall_timeout_s=settings.reindex_stall_timeout_s,
    )


class QuestionsRebuilder:
    def __init__(self, index: QuestionIndex, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self._lock = asyncio.Lock()

    async def run(self) -> QuestionsRebuilt:
        if self._lock.locked():
            raise IndexBusy("a reindex of the questions is already running in this instance")
        async with self._lock:
            started = time.perf_counter()
            await self.index.ensure()
            new = await self.index.start_build(stale_after_s=self.settings.reindex_stale_after_s)
            try:
                stats = await _replay(self.settings, self.index)
                await self.index.finish_build(new)
                old = await self.index.current_index()
                await self.index.swap(new, old)
            except BaseException:
                log.exception("questions_reindex_failed", index=new)
                await asyncio.shield(self.index.abandon_build(new))
                raise
            if old is not None and old != new:
                await self.index.delete_index(old, grace_s=self.settings.reindex_delete_grace_s)
            result = QuestionsRebuilt(
                index=new,
                previous_index=old,
                documents=await self.index.count(new),
                replayed=stats.messages,
                skipped=stats.skipped,
                took_ms=round((time.perf_counter() - started) * 1000),
            )
            log.info("questions_reindex_done", **result.__dict__)
            return result


class QuestionsReindexOut(BaseModel):
    index: str
    previous_index: str | None
    documents: int
    replayed: int
    skipped: int
    took_ms: int


def questions_admin_router(rebuilder: QuestionsRebuilder, guard: Callable[..., None]) -> APIRouter:
    router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(guard)])
    errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "Admin token missing or wrong"},
        409: {"description": "A reindex of the questions is already running"},
        503: {"description": "OpenSearch or Kafka does not answer"},
    }

    @router.post(
        "/questions/reindex",
        response_model=QuestionsReindexOut,
        summary="Rebuild the questions index from question.answered, with no downtime",
        responses=errors,
    )
    async def reindex() -> QuestionsReindexOut:
        try:
            result = await rebuilder.run()
        except IndexBusy as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except (TransportError, OSError, KafkaError, ReplayStalled) as exc:
            log.warning("questions_reindex_unavailable", error=repr(exc))
            raise HTTPException(503, "search is unavailable, retry later") from exc
        return QuestionsReindexOut(**result.__dict__)

    return router
