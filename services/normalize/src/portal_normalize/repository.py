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

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleNormalized
from portal_normalize import similarity, similarity_v1
from portal_normalize.db import (
    articles,
    fingerprint_bands,
    fingerprints,
    image_cache,
    source_rules,
)
from portal_normalize.domain import ImageOutcome, SourceRules
from portal_runtime.upsert import Upsert, from_proposed

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


_SAVE_NEWEST = Upsert(
    articles,
    (
        "article_id",
        "source",
        "external_id",
        "revision",
        "action",
        "event_id",
        "quality_score",
        "quality",
        "duplicate_of",
    ),
    conflict=["article_id"],
    set_=lambda new: {
        **from_proposed(
            new, ("revision", "action", "event_id", "quality_score", "quality", "duplicate_of")
        ),
        "normalized_at": func.now(),
    },
    where=lambda new: articles.c.revision < new.revision,
)

_UPSERT_FINGERPRINTS = Upsert(
    fingerprints,
    ("article_id", "source", "signature", "scheme", "duplicate_of", "similarity"),
    conflict=["article_id"],
    set_=lambda new: from_proposed(
        new, ("source", "signature", "scheme", "duplicate_of", "similarity")
    ),
)


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
    await _SAVE_NEWEST.run(
        session,
        [
            {
                "article_id": data.article_id,
                "source": data.source,
                "external_id": data.external_id,
                "revision": data.revision,
                "action": data.action.value,
                "event_id": event_id,
                "quality_score": data.quality.score if data.quality else None,
                "quality": data.quality.model_dump_json() if data.quality else None,
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


@dataclass(frozen=True)
class StoredImage:
    object_key: str | None
    renditions: dict[int, str]


async def image_by_sha(conn: Executor, sha256: str) -> StoredImage | None:
    """A stored image by the hash of its bytes (any URL it came from)."""
    row = (
        await conn.execute(
            select(image_cache.c.object_key, image_cache.c.renditions)
            .where(image_cache.c.sha256 == sha256, image_cache.c.object_key.is_not(None))
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return StoredImage(row.object_key, {int(w): k for w, k in (row.renditions or {}).items()})


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
    stmt = insert(image_cache)
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
    await session.execute(stmt, rows)


# --- near-duplicates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    article_id: str  # the first article of the story (what the new one duplicates)
    similarity: float


@dataclass(frozen=True)
class Fingerprinted:
    """One article of a batch to link: its signature (None: too short to compare), and its
    scheme-1 signature while stories signed by scheme 1 are looked up (else None)."""

    article_id: str
    source: str
    signature: tuple[int, ...] | None
    signature_v1: tuple[int, ...] | None = None


class Scheme1Stories:
    """Whether stories signed by scheme 1 (before ``similarity.SCHEME``) are still looked up:
    while one was first seen within ``days``, new articles are also signed by scheme 1 and
    compared with them. Asked again after ``ttl_s``."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], days: float, ttl_s: float = 60.0
    ) -> None:
        self.sessions = sessions
        self.days = days
        self.ttl_s = ttl_s
        self._active = days > 0
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def active(self) -> bool:
        if not self._active:
            return False  # none come back once gone: signatures are written by SCHEME only
        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at > self.ttl_s:
            async with self._lock:
                if self._checked_at is None or now - self._checked_at > self.ttl_s:
                    async with self.sessions() as session:
                        self._active = bool(
                            (await session.execute(_SCHEME1_RECENT, {"days": self.days})).scalar()
                        )
                    self._checked_at = time.monotonic()
        return self._active


_SCHEME1_RECENT = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM fingerprints
        WHERE scheme = 1 AND duplicate_of IS NULL
          AND created_at > now() - make_interval(secs => CAST(:days AS float) * 86400)
    )
    """
)


# Most articles sharing one band value that a lookup reads: the cost of a lookup stays flat
# however many articles the index holds and however popular a story gets.
CANDIDATES_PER_BAND = 8

# A near-duplicate shares most of its bands with its story: each candidate is read once per
# item, not once per band it shares.
_CANDIDATES = text(
    """
    SELECT m.item, f.article_id, f.signature, f.scheme, f.duplicate_of, f.created_at
    FROM (
        SELECT DISTINCT k.item, c.article_id
        FROM unnest(CAST(:items AS int[]), CAST(:bands AS smallint[]), CAST(:keys AS bigint[]))
            AS k(item, band, key)
        CROSS JOIN LATERAL (
            SELECT fb.article_id FROM fingerprint_bands AS fb
            WHERE fb.band = k.band AND fb.key = k.key
            LIMIT :per_band
        ) AS c
    ) AS m
    JOIN fingerprints AS f ON f.article_id = m.article_id
    """
)


# A story's bands (16 rows per article) as three arrays: one set of parameters for the batch.
_INSERT_BANDS = text(
    """
    INSERT INTO fingerprint_bands (band, key, article_id)
    SELECT * FROM unnest(
        CAST(:bands AS smallint[]), CAST(:keys AS bigint[]), CAST(:article_ids AS varchar[])
    )
    ON CONFLICT DO NOTHING
    """
)


# What a lookup found per item of a batch: article id -> (packed signature, its scheme, the
# story it repeats, created at as a timestamp).
Candidate = tuple[bytes, int, str | None, float]
Candidates = dict[int, dict[str, Candidate]]
Band = tuple[int, int]  # (band number, band value)


async def link_duplicates(
    session: AsyncSession, batch: Sequence[Fingerprinted]
) -> list[Twin | None]:
    """Store each article's fingerprint and return the story it repeats, if any, in order.

    Only a story's first article is in the band index (a repeat links to it, never to another
    repeat), and a lookup reads at most ``CANDIDATES_PER_BAND`` articles per band value, all
    for the whole batch in one statement; candidates are then compared on the full signature
    and the most similar at or above the threshold wins. An article also finds a story that
    an earlier article of the same batch started.
    """
    if not batch:
        return []
    ids = list(dict.fromkeys(b.article_id for b in batch))
    await session.execute(delete(fingerprint_bands).where(fingerprint_bands.c.article_id.in_(ids)))
    keys = [similarity.bands(b.signature) if b.signature else [] for b in batch]
    keys_v1 = [similarity.bands(b.signature_v1) if b.signature_v1 else [] for b in batch]
    twins = _match_batch(batch, keys, await _candidates(session, keys, keys_v1))
    await _store_fingerprints(session, batch, keys, twins)
    return twins


async def _candidates(
    session: AsyncSession, keys: list[list[int]], keys_v1: list[list[int]]
) -> Candidates:
    """The stored first articles sharing a band value with each item (under either scheme's
    band numbers), in one statement."""
    items, bands, values = [], [], []
    for scheme_keys, first in (
        (keys, similarity.first_band(similarity.SCHEME)),
        (keys_v1, similarity.first_band(similarity_v1.SCHEME)),
    ):
        for item, item_keys in enumerate(scheme_keys):
            for band, key in enumerate(item_keys, start=first):
                items.append(item)
                bands.append(band)
                values.append(key)
    found: Candidates = {}
    if items:
        rows = await session.execute(
            _CANDIDATES,
            {"items": items, "bands": bands, "keys": values, "per_band": CANDIDATES_PER_BAND},
        )
        for row in rows:
            found.setdefault(row.item, {})[row.article_id] = (
                row.signature,
                row.scheme,
                row.duplicate_of,
                row.created_at.timestamp(),
            )
    return found


def _match_batch(
    batch: Sequence[Fingerprinted], keys: list[list[int]], found: Candidates
) -> list[Twin | None]:
    """Each item's twin among the stored candidates and the stories started earlier in the
    batch (an item that finds none starts a story)."""
    twins: list[Twin | None] = []
    started: dict[Band, list[tuple[str, tuple[int, ...]]]] = {}  # in this batch
    for item, b in enumerate(batch):
        twin: Twin | None = None
        if b.signature is not None:
            twin = _best_twin(
                b, b.signature, found.get(item, {}), _started_with(keys[item], started)
            )
            if twin is None:
                for bk in enumerate(keys[item]):
                    started.setdefault(bk, []).append((b.article_id, b.signature))
        twins.append(twin)
    return twins


def _started_with(
    item_keys: list[int], started: dict[Band, list[tuple[str, tuple[int, ...]]]]
) -> list[tuple[str, tuple[int, ...]]]:
    """The stories started earlier in the batch that share a band with the item, in order."""
    return list(
        dict.fromkeys(entry for bk in enumerate(item_keys) for entry in started.get(bk, []))
    )


def _best_twin(
    b: Fingerprinted,
    signature: tuple[int, ...],
    stored: dict[str, Candidate],
    in_batch: list[tuple[str, tuple[int, ...]]],
) -> Twin | None:
    """The most similar candidate at or above the threshold (ties: the older story; a story
    started in this batch is newer than any stored one). A candidate is compared on the
    signatures of its own scheme."""
    scored: list[tuple[float, float, str]] = []  # (score, -time, root)
    for article_id, (raw, scheme, duplicate_of, created) in stored.items():
        mine = signature if scheme == similarity.SCHEME else b.signature_v1
        if article_id != b.article_id and mine is not None and scheme in _SCHEMES:
            score = similarity.similarity(mine, similarity.unpack(raw))
            scored.append((score, -created, duplicate_of or article_id))
    for order, (article_id, sig) in enumerate(in_batch):
        if article_id != b.article_id:
            scored.append((similarity.similarity(signature, sig), -1e12 - order, article_id))
    best = max((s for s in scored if s[0] >= similarity.THRESHOLD), default=None)
    if best is not None and best[2] != b.article_id:
        return Twin(best[2], round(best[0], 3))
    return None


async def _store_fingerprints(
    session: AsyncSession,
    batch: Sequence[Fingerprinted],
    keys: list[list[int]],
    twins: list[Twin | None],
) -> None:
    """Upsert each article's fingerprint (the last of an article in the batch wins), drop those
    now too short to compare, and index the bands (``keys``) of each story's first article."""
    fingerprinted = {
        b.article_id: (b, item_keys, twin)
        for b, item_keys, twin in zip(batch, keys, twins, strict=True)
    }
    gone = [a for a, (b, _, _) in fingerprinted.items() if b.signature is None]
    if gone:
        await session.execute(delete(fingerprints).where(fingerprints.c.article_id.in_(gone)))
    rows_in = [
        {
            "article_id": a,
            "source": b.source,
            "signature": similarity.pack(b.signature),
            "scheme": similarity.SCHEME,
            "duplicate_of": twin.article_id if twin else None,
            "similarity": twin.similarity if twin else None,
        }
        for a, (b, _, twin) in fingerprinted.items()
        if b.signature is not None
    ]
    if rows_in:
        # A new revision keeps the article's place in time (the first of a story stays first).
        await _UPSERT_FINGERPRINTS.run(session, rows_in)
    bands, values, articles_of = [], [], []
    first = similarity.first_band(similarity.SCHEME)
    for a, (b, item_keys, twin) in fingerprinted.items():
        if b.signature is not None and twin is None:
            for band, key in enumerate(item_keys, start=first):
                bands.append(band)
                values.append(key)
                articles_of.append(a)
    if bands:
        await session.execute(
            _INSERT_BANDS, {"bands": bands, "keys": values, "article_ids": articles_of}
        )


_SCHEMES = frozenset({similarity.SCHEME, similarity_v1.SCHEME})


async def link_duplicate(
    session: AsyncSession, article_id: str, source: str, signature: tuple[int, ...] | None
) -> Twin | None:
    """``link_duplicates`` for one article."""
    return (await link_duplicates(session, [Fingerprinted(article_id, source, signature)]))[0]


async def forget_fingerprint(session: AsyncSession, article_id: str) -> None:
    """A retracted (or changed) article no longer stands for its story."""
    await session.execute(
        delete(fingerprint_bands).where(fingerprint_bands.c.article_id == article_id)
    )
    await session.execute(delete(fingerprints).where(fingerprints.c.article_id == article_id))
