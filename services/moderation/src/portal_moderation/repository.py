"""The desk's queries on the moderation service's tables: sources, review items and their
decisions, the queue listing, claims, originals and dead letters as editors see them (the
pipeline's statements are in ``pipeline_repository``)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_contracts.articles import NormalizedArticle
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


async def get_item(conn: Executor, article_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(review_items).where(review_items.c.article_id == article_id))
    ).first()
    return dict(row._mapping) if row else None


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


async def get_original(conn: Executor, article_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(originals).where(originals.c.article_id == article_id))
    ).first()
    return dict(row._mapping) if row else None


# --- dead letters ---------------------------------------------------------------------------


async def list_dead_letters(
    conn: Executor, *, source: str | None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(dead_letters).order_by(dead_letters.c.failed_at.desc(), dead_letters.c.id.desc())
    if source is not None:
        query = query.where(dead_letters.c.source == source)
    rows = await conn.execute(query.limit(limit))
    return [dict(r._mapping) for r in rows]
