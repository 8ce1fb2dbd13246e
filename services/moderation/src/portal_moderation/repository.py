"""Queries on the moderation service's tables (the only module that knows the SQL)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_contracts.articles import ArticleNormalized, NormalizedArticle
from portal_moderation.db import decisions, review_items, sessions, sources, users
from portal_moderation.domain import (
    DEFAULT_POLICY,
    Editor,
    ItemState,
    ItemStatus,
    Outcome,
    Policy,
    Role,
)

Executor = AsyncSession | AsyncConnection

# --- sources --------------------------------------------------------------------------------


async def upsert_source(
    session: AsyncSession, code: str, name: str, kind: str, policy: Policy
) -> None:
    stmt = insert(sources).values(code=code, name=name, kind=kind, policy=policy.value)
    stmt = stmt.on_conflict_do_update(
        index_elements=[sources.c.code],
        set_={"name": name, "kind": kind, "policy": policy.value, "updated_at": func.now()},
    )
    await session.execute(stmt)


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


# --- users and sessions ---------------------------------------------------------------------


async def get_user(
    conn: Executor, username: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(users).where(users.c.username == username)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row else None


async def list_users(conn: Executor) -> list[dict[str, Any]]:
    rows = await conn.execute(select(users).order_by(users.c.username))
    return [dict(r._mapping) for r in rows]


async def save_user(session: AsyncSession, username: str, values: dict[str, Any]) -> bool:
    """Create or update a user; True if it was created."""
    new = insert(users).values(username=username, **values)
    stmt = new.on_conflict_do_update(
        index_elements=[users.c.username], set_={**values, "updated_at": func.now()}
    ).returning((users.c.created_at == users.c.updated_at).label("created"))
    return bool((await session.execute(stmt)).scalar_one())


async def set_login_state(
    session: AsyncSession, username: str, failures: int, locked_until: datetime | None
) -> None:
    await session.execute(
        update(users)
        .where(users.c.username == username)
        .values(failed_logins=failures, locked_until=locked_until)
    )


async def set_password_hash(session: AsyncSession, username: str, password_hash: str) -> None:
    await session.execute(
        update(users).where(users.c.username == username).values(password_hash=password_hash)
    )


async def create_session(
    session: AsyncSession, token_hash: str, username: str, expires_at: datetime
) -> None:
    await session.execute(
        sessions.insert().values(token_hash=token_hash, username=username, expires_at=expires_at)
    )
    # Expired sessions of this user are of no use: tidy them on the way.
    await session.execute(
        delete(sessions).where(sessions.c.username == username, sessions.c.expires_at < func.now())
    )


async def editor_for_token(conn: Executor, token_hash: str, now: datetime) -> Editor | None:
    row = (
        await conn.execute(
            select(users.c.username, users.c.role, users.c.source)
            .select_from(sessions.join(users, sessions.c.username == users.c.username))
            .where(
                sessions.c.token_hash == token_hash,
                sessions.c.expires_at > now,
                users.c.active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return Editor(username=row.username, role=Role(row.role), source=row.source)


async def delete_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(sessions).where(sessions.c.token_hash == token_hash))


async def delete_sessions_of(session: AsyncSession, username: str) -> None:
    await session.execute(delete(sessions).where(sessions.c.username == username))


# --- review items ---------------------------------------------------------------------------


def status_of(row: dict[str, Any] | None) -> ItemStatus | None:
    if row is None:
        return None
    return ItemStatus(
        revision=row["revision"],
        state=ItemState(row["state"]),
        published_revision=row["published_revision"],
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


async def save_incoming(
    session: AsyncSession, data: ArticleNormalized, outcome: Outcome, *, decided_at: datetime
) -> None:
    """Store a newer revision from the pipeline (the caller checked that it is newer)."""
    values: dict[str, Any] = {
        "source": data.source,
        "external_id": data.external_id,
        "revision": data.revision,
        "state": outcome.state.value,
        "published_revision": outcome.published_revision,
        "received_at": data.received_at,
        "decided_by": outcome.reviewer,
        "decided_at": decided_at if outcome.reviewer else None,
    }
    if data.article is not None:
        # A retraction keeps the last article, so editors still see what was withdrawn.
        values.update(
            article=data.article.model_dump(mode="json"),
            title=data.article.title,
            section=data.article.section,
            quality=data.quality.model_dump(mode="json") if data.quality else None,
            quality_score=data.quality.score if data.quality else None,
        )
    stmt = insert(review_items).values(article_id=data.article_id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[review_items.c.article_id],
        set_={**values, "updated_at": func.now()},
    )
    await session.execute(stmt)


async def save_decision(
    session: AsyncSession,
    article_id: str,
    outcome: Outcome,
    *,
    editor: Editor,
    decided_at: datetime,
    article: NormalizedArticle | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "state": outcome.state.value,
        "published_revision": outcome.published_revision,
        "decided_by": editor.username,
        "decided_at": decided_at,
        "updated_at": func.now(),
    }
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
    return dict(row._mapping)


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
) -> None:
    await session.execute(
        decisions.insert().values(
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


async def list_items(
    conn: Executor,
    *,
    state: ItemState | None,
    source: str | None,
    section: str | None,
    newest_first: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    """Keyset pagination on (received_at, article_id): stable while items keep arriving."""
    query = select(review_items)
    if state is not None:
        query = query.where(review_items.c.state == state.value)
    if source is not None:
        query = query.where(review_items.c.source == source)
    if section is not None:
        query = query.where(review_items.c.section == section)
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
