"""The pipeline's statements: what the consumers write and read for a batch of events.

Each is made once per process (the upserts compiled once, run over the batch's rows); JSON
columns are given as the JSON text pydantic's serialiser makes. The desk's queries are in
``repository``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, case, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import ArticleIngested, ArticleNormalized, NormalizedArticle
from portal_moderation.db import dead_letters, decisions, originals, review_items, sources
from portal_moderation.domain import DEFAULT_POLICY, PUBLIC_STATES, Outcome, Policy, flags_of
from portal_moderation.repository import Executor
from portal_runtime.upsert import Proposed, Upsert, from_proposed

# --- sources --------------------------------------------------------------------------------

_SOURCES_OF = select(sources.c.code, sources.c.policy, sources.c.categories).where(
    sources.c.code == any_(bindparam("codes", type_=ARRAY(String)))
)


async def sources_of(
    conn: Executor, codes: Iterable[str]
) -> dict[str, tuple[Policy, dict[str, str]]]:
    """Trust policy and category mapping of each known source among ``codes`` (one query)."""
    rows = await conn.execute(_SOURCES_OF, {"codes": sorted(set(codes))})
    return {
        r.code: (Policy(r.policy) if r.policy else DEFAULT_POLICY, dict(r.categories or {}))
        for r in rows
    }


# --- review items ---------------------------------------------------------------------------

# What the pipeline's consumer reads of a batch's items: their review status, never the
# article (a whole article per row, decoded for nothing).
_LOCK_ITEMS = (
    select(
        review_items.c.article_id,
        review_items.c.revision,
        review_items.c.state,
        review_items.c.published_revision,
        review_items.c.version,
    )
    .where(review_items.c.article_id == any_(bindparam("ids", type_=ARRAY(String))))
    .order_by(review_items.c.article_id)
    .with_for_update()
)


async def lock_items(
    session: AsyncSession, article_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The review status of a batch's items, locked in key order until the transaction ends
    (no deadlock between two batches, nor with an editor's decision)."""
    if not article_ids:
        return {}
    rows = await session.execute(_LOCK_ITEMS, {"ids": sorted(article_ids)})
    return {r.article_id: dict(r._mapping) for r in rows}


_REVISION_COLUMNS = (
    "source",
    "external_id",
    "revision",
    "state",
    "published_revision",
    "received_at",
    "decided_by",
    "decided_at",
)
# What a retraction (a row without an article) leaves as it was: editors still see what was
# withdrawn. ``title`` tells the two kinds of row apart (an article always has one).
_ARTICLE_COLUMNS = (
    "article",
    "title",
    "section",
    "quality",
    "quality_score",
    "flags",
    "duplicate_of",
)


def _incoming_update(new: Proposed) -> dict[str, Any]:
    def unless_retraction(name: str) -> Any:
        return case((new.title.is_(None), review_items.c[name]), else_=new[name])

    return {
        **from_proposed(new, _REVISION_COLUMNS),
        **{name: unless_retraction(name) for name in _ARTICLE_COLUMNS},
        "updated_at": func.now(),
        "version": review_items.c.version + 1,
        "published_at": func.coalesce(review_items.c.published_at, new.published_at),
    }


# The pipeline's newer revisions, run in the batch's order (each row bumps its item's version).
_SAVE_INCOMING = Upsert(
    review_items,
    ("article_id", *_REVISION_COLUMNS, "published_at", *_ARTICLE_COLUMNS),
    conflict=["article_id"],
    set_=_incoming_update,
)


def incoming_row(
    data: ArticleNormalized,
    outcome: Outcome,
    *,
    decided_at: datetime,
    article: NormalizedArticle | None = None,
) -> dict[str, Any]:
    """The row of a newer revision from the pipeline (the caller checked that it is newer),
    for ``save_incoming``. ``article`` is the article as the desk keeps it (a mapped section),
    else the event's."""
    article = article or data.article
    quality = data.quality
    return {
        "article_id": data.article_id,
        "source": data.source,
        "external_id": data.external_id,
        "revision": data.revision,
        "state": outcome.state.value,
        "published_revision": outcome.published_revision,
        "received_at": data.received_at,
        "decided_by": outcome.reviewer,
        "decided_at": decided_at if outcome.reviewer else None,
        "published_at": decided_at if outcome.state in PUBLIC_STATES else None,
        "article": article.model_dump_json() if article is not None else None,
        "title": article.title if article is not None else None,
        "section": article.section if article is not None else None,
        "quality": quality.model_dump_json() if article is not None and quality else None,
        "quality_score": quality.score if article is not None and quality else None,
        "flags": (
            flags_of(quality, section=article.section, duplicate_of=data.duplicate_of)
            if article is not None
            else []
        ),
        "duplicate_of": data.duplicate_of if article is not None else None,
    }


async def save_incoming(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store the pipeline's newer revisions (``incoming_row``), in order: one statement for the
    batch, each row bumping its item's version."""
    await _SAVE_INCOMING.run(session, rows)


# The standard INSERT (not PostgreSQL's): its compiled form is cached.
_ADD_HISTORY = insert(decisions)


async def add_histories(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Many audit entries (the columns of ``repository.add_history``) in one statement."""
    if rows:
        await session.execute(_ADD_HISTORY, list(rows))


# --- originals (as received) ----------------------------------------------------------------

_ORIGINAL_COLUMNS = (
    "source",
    "external_id",
    "revision",
    "action",
    "channel",
    "received_at",
    "raw_object_key",
)

# The newest revision of each article as received; a retraction keeps the last content.
_SAVE_ORIGINALS = Upsert(
    originals,
    ("article_id", *_ORIGINAL_COLUMNS, "content"),
    conflict=["article_id"],
    set_=lambda new: {
        **from_proposed(new, _ORIGINAL_COLUMNS),
        "updated_at": func.now(),
        "content": func.coalesce(new.content, originals.c.content),
    },
    where=lambda new: originals.c.revision < new.revision,
)


async def save_originals(session: AsyncSession, originals_: Sequence[ArticleIngested]) -> None:
    """Keep each article's newest revision as received (one statement for many articles, at
    most one revision each); a retraction keeps the last content."""
    await _SAVE_ORIGINALS.run(
        session,
        [
            {
                "article_id": data.article_id,
                "source": data.source,
                "external_id": data.external_id,
                "revision": data.revision,
                "action": data.action.value,
                "channel": data.channel.value,
                "received_at": data.received_at,
                "raw_object_key": data.raw_object_key,
                "content": None if data.content is None else data.content.model_dump_json(),
            }
            for data in originals_
        ],
    )


# --- dead letters ---------------------------------------------------------------------------

# Each once: by its event id (a copy relayed twice) and by its position in the dead-letter
# topic (a redelivery).
_SAVE_DEAD_LETTERS = Upsert(
    dead_letters,
    [c.name for c in dead_letters.c if c.name not in ("id", "recorded_at")],
)


async def save_dead_letters(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Record dead letters (``deadletters.record_of``), each once."""
    await _SAVE_DEAD_LETTERS.run(session, rows)
