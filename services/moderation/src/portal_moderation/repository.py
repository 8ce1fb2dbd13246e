"""Queries on the moderation service's tables (the only module that knows the SQL)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    String,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_contracts.articles import ArticleIngested, ArticleNormalized, NormalizedArticle
from portal_moderation.db import (
    dead_letters,
    decisions,
    item_claims,
    originals,
    review_items,
    sources,
)
from portal_moderation.domain import (
    DEFAULT_POLICY,
    PUBLIC_STATES,
    Claim,
    Editor,
    ItemState,
    ItemStatus,
    Outcome,
    Policy,
    flags_of,
)

Executor = AsyncSession | AsyncConnection

# --- sources --------------------------------------------------------------------------------


async def upsert_source(
    session: AsyncSession,
    code: str,
    name: str,
    kind: str,
    policy: Policy,
    categories: dict[str, str] | None = None,
) -> None:
    """Create or update a source; ``categories`` None keeps the mapping it has."""
    values: dict[str, Any] = {"name": name, "kind": kind, "policy": policy.value}
    if categories is not None:
        values["categories"] = categories
    stmt = insert(sources).values(code=code, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[sources.c.code], set_={**values, "updated_at": func.now()}
    )
    await session.execute(stmt)


async def categories_of(conn: Executor, code: str) -> dict[str, str]:
    value = (
        await conn.execute(select(sources.c.categories).where(sources.c.code == code))
    ).scalar_one_or_none()
    return dict(value or {})


async def list_sources(conn: Executor) -> list[dict[str, Any]]:
    rows = await conn.execute(select(sources).order_by(sources.c.code))
    return [dict(r._mapping) for r in rows]


async def get_source(conn: Executor, code: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(sources).where(sources.c.code == code))).first()
    return dict(row._mapping) if row else None


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


async def policy_of(conn: Executor, code: str) -> Policy:
    value = (
        await conn.execute(select(sources.c.policy).where(sources.c.code == code))
    ).scalar_one_or_none()
    return Policy(value) if value else DEFAULT_POLICY


# --- review items ---------------------------------------------------------------------------


def status_of(row: dict[str, Any] | None) -> ItemStatus | None:
    if row is None:
        return None
    return ItemStatus(
        revision=row["revision"],
        state=ItemState(row["state"]),
        published_revision=row["published_revision"],
        version=row.get("version", 1),
    )


async def lock_item(session: AsyncSession, article_id: str) -> dict[str, Any] | None:
    """The item, locked until the transaction ends: decisions on one item are serialised."""
    row = (
        await session.execute(
            select(review_items).where(review_items.c.article_id == article_id).with_for_update()
        )
    ).first()
    return dict(row._mapping) if row else None


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


async def get_item(conn: Executor, article_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(review_items).where(review_items.c.article_id == article_id))
    ).first()
    return dict(row._mapping) if row else None


# The pipeline's revisions, one statement for any number of rows, run in the batch's order (each
# row bumps its item's version). Written as SQL text because SQLAlchemy does not cache the
# compiled form of PostgreSQL's INSERT … ON CONFLICT (it would be compiled on every batch). JSON
# arrives as text made by pydantic's serialiser. A row without an article (a retraction) keeps
# the item's last one, so editors still see what was withdrawn; ``title`` tells the two kinds
# of row apart (an article always has one).
_INCOMING_UPSERT = text(
    """
    INSERT INTO review_items AS item (
        article_id, source, external_id, revision, state, published_revision, received_at,
        decided_by, decided_at, published_at,
        article, title, section, quality, quality_score, flags, duplicate_of
    ) VALUES (
        :article_id, :source, :external_id, :revision, :state, :published_revision,
        :received_at, :decided_by, :decided_at, :published_at,
        CAST(:article AS jsonb), :title, :section, CAST(:quality AS jsonb), :quality_score,
        :flags, :duplicate_of
    )
    ON CONFLICT (article_id) DO UPDATE SET
        source = excluded.source,
        external_id = excluded.external_id,
        revision = excluded.revision,
        state = excluded.state,
        published_revision = excluded.published_revision,
        received_at = excluded.received_at,
        decided_by = excluded.decided_by,
        decided_at = excluded.decided_at,
        article = CASE WHEN excluded.title IS NULL THEN item.article ELSE excluded.article END,
        title = CASE WHEN excluded.title IS NULL THEN item.title ELSE excluded.title END,
        section = CASE WHEN excluded.title IS NULL THEN item.section ELSE excluded.section END,
        quality = CASE WHEN excluded.title IS NULL THEN item.quality ELSE excluded.quality END,
        quality_score = CASE WHEN excluded.title IS NULL
            THEN item.quality_score ELSE excluded.quality_score END,
        flags = CASE WHEN excluded.title IS NULL THEN item.flags ELSE excluded.flags END,
        duplicate_of = CASE WHEN excluded.title IS NULL
            THEN item.duplicate_of ELSE excluded.duplicate_of END,
        updated_at = now(),
        version = item.version + 1,
        published_at = coalesce(item.published_at, excluded.published_at)
    """
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
    if rows:
        await session.execute(_INCOMING_UPSERT, list(rows))


async def save_decision(
    session: AsyncSession,
    article_id: str,
    outcome: Outcome,
    *,
    editor: Editor,
    decided_at: datetime,
    article: NormalizedArticle | None,
    reviewed: bool = False,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "state": outcome.state.value,
        "published_revision": outcome.published_revision,
        "decided_by": editor.username,
        "decided_at": decided_at,
        "updated_at": func.now(),
        "version": review_items.c.version + 1,
    }
    if reviewed:
        values["reviewed_at"] = func.coalesce(review_items.c.reviewed_at, decided_at)
    if outcome.state is ItemState.PUBLISHED:
        values["published_at"] = func.coalesce(review_items.c.published_at, decided_at)
    if article is not None:
        values.update(
            article=article.model_dump(mode="json"), title=article.title, section=article.section
        )
    row = (
        await session.execute(
            update(review_items)
            .where(review_items.c.article_id == article_id)
            .values(**values)
            .returning(*review_items.c)
        )
    ).one()
    result = dict(row._mapping)
    if article is not None:
        # The flags follow the edit (a section set clears "no section").
        flags = flags_of(
            result["quality"], section=article.section, duplicate_of=result["duplicate_of"]
        )
        if flags != list(result["flags"]):
            await session.execute(
                update(review_items)
                .where(review_items.c.article_id == article_id)
                .values(flags=flags)
            )
            result["flags"] = flags
    return result


async def add_history(
    session: AsyncSession,
    *,
    article_id: str,
    revision: int,
    action: str,
    actor: str,
    actor_role: str | None,
    decided_at: datetime,
    reason: str | None = None,
    changes: dict[str, Any] | None = None,
    event_id: UUID | None = None,
    wait_s: float | None = None,
) -> None:
    await session.execute(
        decisions.insert().values(
            wait_s=wait_s,
            article_id=article_id,
            revision=revision,
            action=action,
            actor=actor,
            actor_role=actor_role,
            reason=reason,
            changes=changes,
            event_id=event_id,
            decided_at=decided_at,
        )
    )


# The standard INSERT (not PostgreSQL's): its compiled form is cached.
_ADD_HISTORY = sql_insert(decisions)


async def add_histories(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Many audit entries (the columns of ``add_history``) in one statement."""
    if rows:
        await session.execute(_ADD_HISTORY, list(rows))


async def history(conn: Executor, article_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(decisions)
        .where(decisions.c.article_id == article_id)
        .order_by(decisions.c.decided_at, decisions.c.id)
    )
    return [dict(r._mapping) for r in rows]


# --- the queue listing ----------------------------------------------------------------------


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(received_at: datetime, article_id: str) -> str:
    raw = json.dumps([received_at.isoformat(), article_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, article_id = json.loads(raw)
        moment = datetime.fromisoformat(when)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("cursor: not a cursor this API returned") from exc
    if moment.tzinfo is None or not isinstance(article_id, str):
        raise BadCursor("cursor: not a cursor this API returned")
    return moment, article_id


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_items(
    conn: Executor,
    *,
    state: ItemState | None,
    source: str | None,
    section: str | None,
    newest_first: bool,
    cursor: str | None,
    limit: int,
    flag: str | None = None,
    received_after: datetime | None = None,
    received_before: datetime | None = None,
    text: str | None = None,
    states: tuple[ItemState, ...] | None = None,
) -> Page:
    """Keyset pagination on (received_at, article_id): stable while items keep arriving."""
    query = select(review_items)
    if state is not None:
        query = query.where(review_items.c.state == state.value)
    if states is not None:
        query = query.where(review_items.c.state.in_([s.value for s in states]))
    if source is not None:
        query = query.where(review_items.c.source == source)
    if section is not None:
        query = query.where(review_items.c.section == section)
    if flag is not None:
        query = query.where(review_items.c.flags.contains([flag]))
    if received_after is not None:
        query = query.where(review_items.c.received_at >= received_after)
    if received_before is not None:
        query = query.where(review_items.c.received_at < received_before)
    if text:
        pattern = like_pattern(text)
        query = query.where(
            or_(
                review_items.c.title.ilike(pattern, escape="\\"),
                review_items.c.external_id == text,
                review_items.c.article_id == text,
            )
        )
    key = (review_items.c.received_at, review_items.c.article_id)
    if cursor is not None:
        after_time, after_id = decode_cursor(cursor)
        if newest_first:
            query = query.where(
                or_(key[0] < after_time, and_(key[0] == after_time, key[1] < after_id))
            )
        else:
            query = query.where(
                or_(key[0] > after_time, and_(key[0] == after_time, key[1] > after_id))
            )
    order = [k.desc() for k in key] if newest_first else list(key)
    rows = [dict(r._mapping) for r in await conn.execute(query.order_by(*order).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(rows[-1]["received_at"], rows[-1]["article_id"]) if more and rows else None
    )
    return Page(items=rows, next_cursor=next_cursor)


async def get_items(conn: Executor, article_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not article_ids:
        return {}
    rows = await conn.execute(
        select(review_items).where(review_items.c.article_id.in_(article_ids))
    )
    return {r.article_id: dict(r._mapping) for r in rows}


async def twins_of(conn: Executor, row: dict[str, Any], limit: int = 5) -> list[dict[str, Any]]:
    """Near-duplicates of an item: the one it was matched to and those matched to it."""
    conditions = [review_items.c.duplicate_of == row["article_id"]]
    if row.get("duplicate_of"):
        conditions.append(review_items.c.article_id == row["duplicate_of"])
        conditions.append(review_items.c.duplicate_of == row["duplicate_of"])
    rows = await conn.execute(
        select(review_items)
        .where(or_(*conditions), review_items.c.article_id != row["article_id"])
        .order_by(review_items.c.received_at)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


# --- claims (who has an item open) ----------------------------------------------------------


async def claim_item(
    session: AsyncSession, article_id: str, username: str, now: datetime, expires_at: datetime
) -> Claim:
    """Claim the item unless someone else holds a live claim; returns the claim in force."""
    stmt = insert(item_claims).values(
        article_id=article_id, username=username, claimed_at=now, expires_at=expires_at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[item_claims.c.article_id],
        set_={
            "username": username,
            # A renewal keeps the time the editor first opened it.
            "claimed_at": case(
                (
                    and_(item_claims.c.username == username, item_claims.c.expires_at > now),
                    item_claims.c.claimed_at,
                ),
                else_=literal(now),
            ),
            "expires_at": expires_at,
        },
        where=or_(item_claims.c.username == username, item_claims.c.expires_at <= now),
    )
    await session.execute(stmt)
    row = (
        await session.execute(select(item_claims).where(item_claims.c.article_id == article_id))
    ).one()
    return Claim(row.username, row.claimed_at, row.expires_at)


async def release_claim(session: AsyncSession, article_id: str, username: str) -> None:
    await session.execute(
        delete(item_claims).where(
            item_claims.c.article_id == article_id, item_claims.c.username == username
        )
    )


async def claims_for(conn: Executor, article_ids: list[str], now: datetime) -> dict[str, Claim]:
    if not article_ids:
        return {}
    rows = await conn.execute(
        select(item_claims).where(
            item_claims.c.article_id.in_(article_ids), item_claims.c.expires_at > now
        )
    )
    return {r.article_id: Claim(r.username, r.claimed_at, r.expires_at) for r in rows}


# --- originals (as received) ----------------------------------------------------------------


# The newest revision of each article as received; a retraction keeps the last content.
# SQL text for the same reason as ``_INCOMING_UPSERT``.
_ORIGINALS_UPSERT = text(
    """
    INSERT INTO originals AS kept (
        article_id, source, external_id, revision, action, channel, received_at,
        raw_object_key, content
    ) VALUES (
        :article_id, :source, :external_id, :revision, :action, :channel, :received_at,
        :raw_object_key, CAST(:content AS jsonb)
    )
    ON CONFLICT (article_id) DO UPDATE SET
        source = excluded.source,
        external_id = excluded.external_id,
        revision = excluded.revision,
        action = excluded.action,
        channel = excluded.channel,
        received_at = excluded.received_at,
        raw_object_key = excluded.raw_object_key,
        updated_at = now(),
        content = coalesce(excluded.content, kept.content)
    WHERE kept.revision < excluded.revision
    """
)


async def save_originals(session: AsyncSession, originals_: Sequence[ArticleIngested]) -> None:
    """Keep each article's newest revision as received (one statement for many articles, at
    most one revision each); a retraction keeps the last content."""
    if not originals_:
        return
    await session.execute(
        _ORIGINALS_UPSERT,
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


async def get_original(conn: Executor, article_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(originals).where(originals.c.article_id == article_id))
    ).first()
    return dict(row._mapping) if row else None


# --- dead letters ---------------------------------------------------------------------------


async def save_dead_letters(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Record dead letters, each once: by its event id (a copy relayed twice) and by its
    position in the dead-letter topic (a redelivery)."""
    if not rows:
        return
    await session.execute(insert(dead_letters).on_conflict_do_nothing(), list(rows))


async def list_dead_letters(
    conn: Executor, *, source: str | None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(dead_letters).order_by(dead_letters.c.failed_at.desc(), dead_letters.c.id.desc())
    if source is not None:
        query = query.where(dead_letters.c.source == source)
    rows = await conn.execute(query.limit(limit))
    return [dict(r._mapping) for r in rows]
