"""Queries on the normalize service's tables."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleNormalized
from portal_normalize import similarity
from portal_normalize.db import (
    articles,
    fingerprint_bands,
    fingerprints,
    image_cache,
    source_rules,
)
from portal_normalize.domain import ImageOutcome, SourceRules

Executor = AsyncSession | AsyncConnection

# --- articles ---------------------------------------------------------------------------------


async def lock_revisions(session: AsyncSession, article_ids: Sequence[str]) -> dict[str, int]:
    """The newest revision normalised per article, the rows locked in key order until the
    transaction ends (a batch's articles; no deadlock between two batches)."""
    if not article_ids:
        return {}
    rows = await session.execute(
        select(articles.c.article_id, articles.c.revision)
        .where(articles.c.article_id.in_(sorted(article_ids)))
        .order_by(articles.c.article_id)
        .with_for_update()
    )
    return {row.article_id: int(row.revision) for row in rows}


async def claim_revisions(
    session: AsyncSession, claimed: Sequence[tuple[ArticleNormalized, UUID]]
) -> None:
    """Record each article's newest revision of the batch (one statement, many rows); an equal
    or newer revision already stored is kept (two consumers racing cannot both win)."""
    newest: dict[str, tuple[ArticleNormalized, UUID]] = {}
    for data, event_id in claimed:
        newest[data.article_id] = (data, event_id)
    if not newest:
        return
    stmt = insert(articles)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[articles.c.article_id],
        set_={
            "revision": new.revision,
            "action": new.action,
            "event_id": new.event_id,
            "quality_score": new.quality_score,
            "quality": new.quality,
            "duplicate_of": new.duplicate_of,
            "normalized_at": func.now(),
        },
        where=articles.c.revision < new.revision,
    )
    await session.execute(
        stmt,
        [
            {
                "article_id": data.article_id,
                "source": data.source,
                "external_id": data.external_id,
                "revision": data.revision,
                "action": data.action.value,
                "event_id": event_id,
                "quality_score": data.quality.score if data.quality else None,
                "quality": data.quality.model_dump(mode="json") if data.quality else None,
                "duplicate_of": data.duplicate_of,
            }
            for data, event_id in newest.values()
        ],
    )


async def get_article(conn: AsyncConnection, article_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(articles).where(articles.c.article_id == article_id))).first()
    return dict(row._mapping) if row else None


# --- source rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRules:
    code: str
    rules: SourceRules
    updated_at: datetime


async def put_rules(session: AsyncSession, code: str, rules: SourceRules) -> StoredRules:
    values = {
        "code": code,
        "categories": dict(rules.categories),
        "timezone": rules.timezone,
        "default_section": rules.default_section,
    }
    upsert = (
        insert(source_rules)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[source_rules.c.code],
            set_={**{k: v for k, v in values.items() if k != "code"}, "updated_at": func.now()},
        )
        .returning(source_rules.c.updated_at)
    )
    updated_at = (await session.execute(upsert)).scalar_one()
    return StoredRules(code, rules, updated_at)


async def get_rules(conn: Executor, code: str) -> StoredRules | None:
    row = (await conn.execute(select(source_rules).where(source_rules.c.code == code))).first()
    if row is None:
        return None
    rules = SourceRules(
        categories=dict(row.categories),
        timezone=row.timezone,
        default_section=row.default_section,
    )
    return StoredRules(row.code, rules, row.updated_at)


class RulesCache:
    """Every source's rules in memory, read again after ``ttl_s`` (they change rarely; this
    instance's own writes drop them at once, another instance's show within the TTL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float = 5.0) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self._rules: dict[str, SourceRules] = {}
        self._loaded_at: float | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._generation += 1
        self._loaded_at = None

    def _fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at <= self.ttl_s

    async def get(self, code: str) -> SourceRules | None:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    started, generation = time.monotonic(), self._generation
                    async with self.sessions() as session:
                        rows = (await session.execute(select(source_rules))).all()
                    self._rules = {
                        row.code: SourceRules(
                            categories=dict(row.categories),
                            timezone=row.timezone,
                            default_section=row.default_section,
                        )
                        for row in rows
                    }
                    # A write during the read may be missing from it: read again next time.
                    if generation == self._generation:
                        self._loaded_at = started
        return self._rules.get(code)


# --- image cache ------------------------------------------------------------------------------


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


@dataclass(frozen=True)
class CachedImage:
    outcome: ImageOutcome
    fetched_at: datetime


async def cached_images(conn: Executor, urls: Iterable[str]) -> dict[str, CachedImage]:
    by_hash = {url_hash(u): u for u in urls}
    if not by_hash:
        return {}
    rows = (
        await conn.execute(select(image_cache).where(image_cache.c.url_hash.in_(list(by_hash))))
    ).all()
    found: dict[str, CachedImage] = {}
    for row in rows:
        url = by_hash[row.url_hash]
        renditions = {int(w): k for w, k in (row.renditions or {}).items()}
        outcome = ImageOutcome(
            url=url,
            object_key=row.object_key,
            width=row.width,
            height=row.height,
            renditions=renditions,
            code=row.code,
            reason=row.reason,
        )
        found[url] = CachedImage(outcome, row.fetched_at)
    return found


async def save_images(
    session: AsyncSession,
    outcomes: Iterable[tuple[ImageOutcome, str | None, str | None, int | None]],
) -> None:
    """Record fetch results: (outcome, sha256, content type, size in bytes) per URL."""
    rows = [
        {
            "url_hash": url_hash(o.url),
            "url": o.url,
            "object_key": o.object_key,
            "sha256": sha,
            "content_type": content_type,
            "width": o.width,
            "height": o.height,
            "renditions": {str(w): k for w, k in o.renditions.items()} or None,
            "size_bytes": size,
            "code": o.code,
            "reason": o.reason,
        }
        for o, sha, content_type, size in outcomes
    ]
    if not rows:
        return
    stmt = insert(image_cache).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[image_cache.c.url_hash],
        set_={
            name: stmt.excluded[name]
            for name in (
                "object_key",
                "sha256",
                "content_type",
                "width",
                "height",
                "renditions",
                "size_bytes",
                "code",
                "reason",
            )
        }
        | {"fetched_at": func.now()},
    )
    await session.execute(stmt)


# --- near-duplicates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    article_id: str  # the first article of the story (what the new one duplicates)
    similarity: float


async def link_duplicate(
    session: AsyncSession, article_id: str, source: str, signature: tuple[int, ...] | None
) -> Twin | None:
    """Store the article's fingerprint and return the story it repeats, if any.

    Candidates share a band of the signature; the most similar one at or above the threshold
    wins, and the link goes to the first article of its story (never a chain of duplicates).
    """
    await session.execute(
        delete(fingerprint_bands).where(fingerprint_bands.c.article_id == article_id)
    )
    if signature is None:
        await session.execute(delete(fingerprints).where(fingerprints.c.article_id == article_id))
        return None
    keys = similarity.bands(signature)
    candidates = (
        (
            await session.execute(
                select(fingerprint_bands.c.article_id)
                .where(
                    tuple_(fingerprint_bands.c.band, fingerprint_bands.c.key).in_(
                        list(enumerate(keys))
                    ),
                    fingerprint_bands.c.article_id != article_id,
                )
                .distinct()
                .limit(200)
            )
        )
        .scalars()
        .all()
    )
    twin: Twin | None = None
    if candidates:
        rows = (
            await session.execute(
                select(
                    fingerprints.c.article_id,
                    fingerprints.c.signature,
                    fingerprints.c.duplicate_of,
                    fingerprints.c.created_at,
                ).where(fingerprints.c.article_id.in_(candidates))
            )
        ).all()
        scored = [
            (similarity.similarity(signature, similarity.unpack(r.signature)), r) for r in rows
        ]
        scored = [(s, r) for s, r in scored if s >= similarity.THRESHOLD]
        if scored:
            best_score, best = max(scored, key=lambda sr: (sr[0], -sr[1].created_at.timestamp()))
            root = best.duplicate_of or best.article_id
            if root != article_id:
                twin = Twin(root, round(best_score, 3))
    stmt = insert(fingerprints).values(
        article_id=article_id,
        source=source,
        signature=similarity.pack(signature),
        duplicate_of=twin.article_id if twin else None,
        similarity=twin.similarity if twin else None,
    )
    # A new revision keeps the article's place in time (the first of a story stays first).
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[fingerprints.c.article_id],
            set_={
                name: stmt.excluded[name]
                for name in ("source", "signature", "duplicate_of", "similarity")
            },
        )
    )
    await session.execute(
        insert(fingerprint_bands).values(
            [{"band": i, "key": k, "article_id": article_id} for i, k in enumerate(keys)]
        )
    )
    return twin


async def forget_fingerprint(session: AsyncSession, article_id: str) -> None:
    """A retracted (or changed) article no longer stands for its story."""
    await session.execute(
        delete(fingerprint_bands).where(fingerprint_bands.c.article_id == article_id)
    )
    await session.execute(delete(fingerprints).where(fingerprints.c.article_id == article_id))
