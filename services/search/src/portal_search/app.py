"""Wires the search service: settings, OpenSearch index, Kafka subscribers, HTTP routes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from fastapi import FastAPI
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from portal_runtime.auth import admin_guard
from portal_runtime.logs import get_logger
from portal_runtime.serve import serve
from portal_runtime.service import Service
from portal_search import api
from portal_search.db import outbox
from portal_search.deps import ApiDeps
from portal_search.handlers import published_subscription
from portal_search.index import ArticleIndex, IndexBusy, SearchUnavailable, folding_filter
from portal_search.questions import (
    answered_subscription,
    make_question_index,
    questions_router,
)
from portal_search.questions_rebuild import QuestionsRebuilder, questions_admin_router
from portal_search.rebuild import Rebuilder
from portal_search.refresher import Refresher
from portal_search.resultcache import ResultCache
from portal_search.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# How long start-up waits for OpenSearch before giving up (the orchestrator restarts us).
STARTUP_WAIT_S = 120.0

log = get_logger(__name__)
T = TypeVar("T")


async def _when_opensearch_answers(step: Callable[[], Awaitable[T]]) -> T:
    """``step``'s result, retried while OpenSearch is unavailable (for up to STARTUP_WAIT_S)."""
    deadline = time.monotonic() + STARTUP_WAIT_S
    delay = 0.5
    while True:
        try:
            return await step()
        except (OpenSearchConnectionError, SearchUnavailable, OSError) as exc:
            retryable: Exception | None = exc
        except TransportError as exc:
            if exc.status_code not in (429, 502, 503, 504):
                raise
            retryable = exc
        if time.monotonic() > deadline:
            raise RuntimeError(f"OpenSearch not ready after {STARTUP_WAIT_S:.0f}s") from retryable
        log.warning("search_index_waiting", error=repr(retryable), delay_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def prepare_indices(client: AsyncOpenSearch, indices: list[ArticleIndex]) -> None:
    """Give every alias an index, made with the fastest folding filter the cluster has (asked
    once; an index made before keeps its filter: the tokens are the same)."""
    folding = await _when_opensearch_answers(lambda: folding_filter(client))
    log.info("search_folding_filter", filter=folding)
    for index in indices:
        index.folding = folding
        name = await _when_opensearch_answers(index.ensure)
        log.info("search_index_ready", alias=index.alias, index=name)


async def rebuild_if_outdated(
    index: ArticleIndex, rebuild: Callable[[], Awaitable[object]]
) -> None:
    """Rebuild an index made with an older layout before this instance serves or consumes.

    This version's queries expect its layout, so the instance is not ready until the alias
    points at an index of it (instances of the older version keep serving the old index
    meanwhile). Another instance rebuilding it already is fine (IndexBusy: this one goes on);
    a failed rebuild fails the start, leaving the old index in place for the next attempt.
    """
    if not await index.outdated():
        return
    log.warning("search_index_layout_outdated", alias=index.alias)
    try:
        await rebuild()
    except IndexBusy:
        log.info("search_index_rebuild_elsewhere", alias=index.alias)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Service(
        settings,
        migrations_dir=MIGRATIONS,
        outbox=outbox,
        uses_object_store=False,
        uses_opensearch=True,
    )
    assert service.opensearch is not None
    index = ArticleIndex(
        service.opensearch,
        alias=settings.index_alias,
        shards=settings.index_shards,
        replicas=settings.index_replicas,
        refresh_interval=settings.index_refresh_interval,
        bulk_timeout_s=settings.index_bulk_timeout_s,
    )
    rebuilder = Rebuilder(index, settings)
    # Answers of popular searches, kept briefly (resultcache.py).
    results = ResultCache(
        ttl_s=settings.search_cache_ttl_s, max_entries=settings.search_cache_max_entries
    )

    # Written articles become searchable by the consumer's refreshes (refresher.py).
    refresher = (
        Refresher(index.refresh, min_gap_s=settings.index_refresh_min_gap_ms / 1000)
        if settings.index_refresh_on_write
        else None
    )
    service.consume(
        published_subscription(
            index,
            max_body_chars=settings.index_max_body_chars,
            results=results,
            on_written=refresher.written if refresher is not None else None,
        )
    )

    # Answered questions: their own alias, the same analysers and versioning.
    questions = make_question_index(
        service.opensearch, shards=settings.index_shards, replicas=settings.index_replicas
    )
    service.consume(answered_subscription(questions))
    questions_rebuilder = QuestionsRebuilder(questions, settings)

    async def alias_check() -> None:
        if await index.current_index() is None:
            raise RuntimeError(f"alias {index.alias!r} points at no index")

    service.checks["search_index"] = alias_check

    app = service.create_app(
        title="Cổng TTĐT — Search",
        description="OpenSearch read model and the public search API.",
        # Searches answered a moment ago are answered again before routing (resultcache.py).
        stored_responses=results.response,
        routers=[
            api.public,
            questions_router(questions),
            questions_admin_router(questions_rebuilder, admin_guard(settings)),
            api.admin,
        ],
    )

    app.state.api = ApiDeps(index=index, results=results, rebuilder=rebuilder)  # deps.py

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The alias must exist before the consumer writes through it.
        await prepare_indices(index.client, [index, questions])
        await rebuild_if_outdated(index, rebuilder.run)
        await rebuild_if_outdated(questions, questions_rebuilder.run)
        async with service.lifespan(app):
            refreshing = asyncio.create_task(refresher.run()) if refresher is not None else None
            try:
                yield
            finally:
                if refreshing is not None:
                    refreshing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await refreshing

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
