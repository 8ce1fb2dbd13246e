"""Rebuild of the published store from ``article.published``, its own changelog.

``article.reviewed`` is kept 14 days (topic registry), so it cannot rebuild the store. The source
of truth of the public state is ``article.published``: compacted and kept forever, it holds the
newest public state of every article with every field of a store row (slug, first publication,
the published revision's article). The rebuild replays it up to the end offsets taken at the
start and restores a row only where the store has none or an older one (by revision, then update
time). It emits nothing: unchanged articles get no new ``article.published`` event, and running it
twice changes nothing the second time. Rows newer than the log (an outbox not yet relayed) stay.

Not in ``article.published``: the partner's ``external_id`` (restored rows get an empty one; no
read path uses it) and the title of an article retracted before the log was compacted (its 410
answer then has no title).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticlePublishedEvent, PublishedState
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_publishing import repository as repo
from portal_publishing.domain import fingerprint
from portal_runtime.logs import get_logger
from portal_runtime.replay import ReplayStats, TopicMissing, replay

log = get_logger(__name__)


# --- pure: fold the log into the newest state per article, and the row it stands for ----------


@dataclass(frozen=True)
class Latest:
    """The newest event of one article in the log, with what earlier events told of it."""

    event: ArticlePublishedEvent
    title: str | None
    section: str | None


def fold(latest: dict[str, Latest], events: Iterable[ArticlePublishedEvent]) -> None:
    """Keep the last event per article (log order is emission order: one key, one partition)."""
    for event in events:
        data = event.data
        before = latest.get(data.article_id)
        title = data.article.title if data.article else (before.title if before else None)
        section = data.article.section if data.article else (before.section if before else None)
        latest[data.article_id] = Latest(event, title, section)


def is_newer(event: ArticlePublishedEvent, revision: int, updated_at: datetime) -> bool:
    """Whether the log's state is newer than the stored row's (so the row must be restored)."""
    return (event.data.revision, event.data.updated_at) > (revision, updated_at)


def row_values(latest: Latest) -> dict[str, Any]:
    data = latest.event.data
    values: dict[str, Any] = {
        "article_id": data.article_id,
        "source": data.source,
        "external_id": "",  # not carried by article.published; nothing reads it
        "revision": data.revision,
        "state": data.state.value,
        "slug": data.slug,
        "section": latest.section,
        "title": latest.title,
        "published_at": data.published_at,
        "updated_at": data.updated_at,
        "last_event_id": latest.event.event_id,
    }
    article = data.article
    if data.state == PublishedState.PUBLISHED and article is not None:
        values |= {
            "summary": article.summary or None,
            "author": article.author,
            "lead_image": (
                article.lead_image.model_dump(mode="json") if article.lead_image else None
            ),
            "source_published_at": article.published_at,
            "article": article.model_dump(mode="json"),
            "fingerprint": fingerprint(data.source, article),
            "retracted_at": None,
        }
    else:
        values |= {
            "summary": None,
            "author": None,
            "lead_image": None,
            "source_published_at": None,
            "article": None,
            "fingerprint": None,
            "retracted_at": data.updated_at,
        }
    return values


def scopes_of(source: str, section: str | None) -> list[str]:
    scopes = [repo.ARTICLES_SCOPE, repo.subsite_scope(source)]
    if section:
        scopes.append(repo.section_scope(section))
    return scopes


# --- I/O: the replay and the store -----------------------------------------------------------


@dataclass(frozen=True)
class RebuildResult:
    replayed: int
    articles: int
    restored: int
    unchanged: int
    skipped: int
    took_ms: int


class RebuildBusy(RuntimeError):
    pass


async def read_published(
    kafka: Mapping[str, Any], topic: str = ARTICLE_PUBLISHED.name
) -> tuple[dict[str, Latest], ReplayStats]:
    """Every article's newest state in ``article.published`` up to the end offsets of now.
    ``kafka``: the service's client options (``kafka_security.client_options``)."""
    latest: dict[str, Latest] = {}

    async def load(events: list[ArticlePublishedEvent]) -> None:
        fold(latest, events)

    stats = await replay(kafka, topic, ArticlePublishedEvent, load, client_id="publishing-rebuild")
    return latest, stats


class StoreRebuilder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        kafka: Mapping[str, Any],
        topic: str = ARTICLE_PUBLISHED.name,
    ) -> None:
        self.sessions = sessions
        self.kafka = kafka  # the service's client options (kafka_security.client_options)
        self.topic = topic
        self._lock = asyncio.Lock()

    async def run(self, batch: int = 200) -> RebuildResult:
        if self._lock.locked():
            raise RebuildBusy("a rebuild is already running in this instance")
        async with self._lock:
            started = time.perf_counter()
            latest, stats = await read_published(self.kafka, topic=self.topic)
            skipped = stats.skipped
            restored = unchanged = 0
            items = list(latest.values())
            for i in range(0, len(items), batch):
                async with self.sessions.begin() as session:
                    r, u, s = await self._apply(session, items[i : i + batch])
                restored, unchanged, skipped = restored + r, unchanged + u, skipped + s
            result = RebuildResult(
                replayed=stats.messages,
                articles=len(latest),
                restored=restored,
                unchanged=unchanged,
                skipped=skipped,
                took_ms=round((time.perf_counter() - started) * 1000),
            )
            log.info("store_rebuilt", **result.__dict__)
            return result

    async def _apply(self, session: AsyncSession, items: list[Latest]) -> tuple[int, int, int]:
        restored = unchanged = skipped = 0
        scopes: set[str] = set()
        for item in items:
            data = item.event.data
            row = await repo.lock_article(session, data.article_id)
            if row is not None and not is_newer(item.event, row.revision, row.updated_at):
                unchanged += 1
                continue
            if await repo.slug_taken(session, data.slug, data.article_id):
                log.warning("rebuild_slug_taken", article_id=data.article_id, slug=data.slug)
                skipped += 1
                continue
            await repo.upsert_article(session, row_values(item))
            scopes.update(scopes_of(data.source, item.section))
            if row is not None:
                scopes.update(scopes_of(row.source, row.section))
            restored += 1
        if scopes:
            await repo.touch(session, sorted(scopes))  # lists, feeds and sitemaps changed
        return restored, unchanged, skipped


class RebuildOut(BaseModel):
    replayed: int = Field(description="Messages of article.published read.")
    articles: int = Field(description="Articles in the log.")
    restored: int = Field(description="Rows written: missing, or older than the log.")
    unchanged: int = Field(description="Rows already as new as the log (left alone).")
    skipped: int = Field(description="Invalid messages, or a slug held by another article.")
    took_ms: int


class RebuildRefused(BaseModel):
    detail: str = Field(description="Why no rebuild ran.")


def rebuild_router(rebuilder: StoreRebuilder, guard: Callable[..., None]) -> APIRouter:
    router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(guard)])

    @router.post(
        "/rebuild",
        response_model=RebuildOut,
        summary="Restore the published store from article.published",
        description=(
            "Replays the compacted article.published topic (kept forever) and restores every "
            "article whose row is missing or older. Emits no event; idempotent. Answers when done."
        ),
        responses={
            401: {"description": "Admin token missing or wrong"},
            409: {"model": RebuildRefused, "description": "A rebuild is already running"},
            503: {
                "model": RebuildRefused,
                "description": "Kafka or the database does not answer, or article.published "
                "does not exist yet (the reason says which)",
            },
        },
    )
    async def rebuild() -> RebuildOut:
        try:
            result = await rebuilder.run()
        except RebuildBusy as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except TopicMissing as exc:
            log.warning("rebuild_log_missing", error=str(exc))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "60"}
            ) from exc
        except (KafkaError, OSError, TimeoutError) as exc:  # ReplayStalled is a TimeoutError
            log.warning("rebuild_unavailable", error=repr(exc))
            raise HTTPException(503, "Kafka or the database is unavailable, retry later") from exc
        return RebuildOut(**result.__dict__)

    return router
