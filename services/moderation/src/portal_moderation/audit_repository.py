"""Queries on the audit log: editors' decisions on items, and the admin changes (sources,
accounts, keys), searched and paged from the newest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_moderation.db import admin_audit, decisions, review_items
from portal_moderation.repository import like_pattern

Executor = AsyncSession | AsyncConnection


async def add_admin_audit(
    session: AsyncSession, *, actor: str, action: str, target: str, details: dict[str, Any] | None
) -> None:
    await session.execute(
        admin_audit.insert().values(actor=actor, action=action, target=target, details=details)
    )


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    item: str | None = None  # article id, external id or words of the title
    action: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def search_decisions(
    conn: Executor, filters: AuditFilter, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Decisions newest first, with the item's title and source (keyset on the id)."""
    query = select(
        decisions,
        review_items.c.title,
        review_items.c.source,
        review_items.c.external_id,
    ).select_from(
        decisions.outerjoin(review_items, review_items.c.article_id == decisions.c.article_id)
    )
    if filters.actor:
        query = query.where(decisions.c.actor == filters.actor)
    if filters.action:
        query = query.where(decisions.c.action == filters.action)
    if filters.source:
        query = query.where(review_items.c.source == filters.source)
    if filters.item:
        query = query.where(
            or_(
                decisions.c.article_id == filters.item,
                review_items.c.external_id == filters.item,
                review_items.c.title.ilike(like_pattern(filters.item), escape="\\"),
            )
        )
    if filters.since is not None:
        query = query.where(decisions.c.decided_at >= filters.since)
    if filters.until is not None:
        query = query.where(decisions.c.decided_at < filters.until)
    if before_id is not None:
        query = query.where(decisions.c.id < before_id)
    rows = await conn.execute(query.order_by(decisions.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


async def search_admin_audit(
    conn: Executor, *, actor: str | None, target: str | None, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(admin_audit)
    if actor:
        query = query.where(admin_audit.c.actor == actor)
    if target:
        query = query.where(admin_audit.c.target.ilike(like_pattern(target), escape="\\"))
    if before_id is not None:
        query = query.where(admin_audit.c.id < before_id)
    rows = await conn.execute(query.order_by(admin_audit.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
