"""Queries on editors' accounts and their sign-in sessions (only a digest of a session token is
stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_moderation.db import sessions, sign_in_failures, users
from portal_moderation.domain import Editor, Role

Executor = AsyncSession | AsyncConnection


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


async def save_user(
    session: AsyncSession, username: str, values: dict[str, Any], *, exists: bool
) -> bool:
    """Create or update a user; True if it was created."""
    if exists:
        # A plain UPDATE: an INSERT ... ON CONFLICT checks NOT NULL (password_hash) on the row it
        # proposes before it sees the conflict, so an update without a new password would fail.
        await session.execute(
            update(users)
            .where(users.c.username == username)
            .values(**values, updated_at=func.now())
        )
        return False
    new = insert(users).values(username=username, **values)
    stmt = new.on_conflict_do_update(
        index_elements=[users.c.username], set_={**values, "updated_at": func.now()}
    ).returning((users.c.created_at == users.c.updated_at).label("created"))
    return bool((await session.execute(stmt)).scalar_one())


async def set_password_hash(
    session: AsyncSession, username: str, password_hash: str, *, replacing: str
) -> None:
    """A rehash of the same password: never over a password changed meanwhile."""
    await session.execute(
        update(users)
        .where(users.c.username == username, users.c.password_hash == replacing)
        .values(password_hash=password_hash)
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
            select(users.c.username, users.c.role, users.c.source, users.c.display_name)
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
    return Editor(
        username=row.username,
        role=Role(row.role),
        source=row.source,
        display_name=row.display_name,
    )


async def delete_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(sessions).where(sessions.c.token_hash == token_hash))


async def delete_sessions_of(session: AsyncSession, username: str) -> None:
    await session.execute(delete(sessions).where(sessions.c.username == username))


# --- failed sign-ins, per client address ----------------------------------------------------


async def recent_sign_in_failures(
    conn: Executor,
    address: str,
    *,
    username: str | None,
    since: datetime,
    limit: int,
) -> list[datetime]:
    """The newest ``limit`` failures from ``address`` since ``since`` (of one name, if given)."""
    if limit <= 0:
        return []
    query = select(sign_in_failures.c.failed_at).where(
        sign_in_failures.c.address == address, sign_in_failures.c.failed_at > since
    )
    if username is not None:
        query = query.where(sign_in_failures.c.username == username)
    rows = await conn.execute(query.order_by(sign_in_failures.c.failed_at.desc()).limit(limit))
    return list(rows.scalars())


async def record_sign_in_failure(
    session: AsyncSession, address: str, username: str, now: datetime, *, keep_since: datetime
) -> None:
    """Record a failure; failures that left the window are of no use, so they go on the way."""
    await session.execute(
        sign_in_failures.insert().values(address=address, username=username, failed_at=now)
    )
    await session.execute(
        delete(sign_in_failures).where(sign_in_failures.c.failed_at <= keep_since)
    )


async def clear_sign_in_failures(session: AsyncSession, address: str, username: str) -> None:
    await session.execute(
        delete(sign_in_failures).where(
            sign_in_failures.c.address == address, sign_in_failures.c.username == username
        )
    )
