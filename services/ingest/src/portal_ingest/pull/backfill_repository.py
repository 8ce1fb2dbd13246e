"""The queries of backfill jobs (an operator asks for a date range of a sitemap; one worker at a
time runs each job under a lease), inside the caller's session."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_ingest.pull.db import feed_backfills


@dataclass(frozen=True)
class BackfillRow:
    id: int
    source: str
    connector_id: int | None
    date_from: date
    date_to: date
    state: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_until: datetime | None
    counts: dict[str, int]
    last_error: str | None


def _backfill(row: Row[Any]) -> BackfillRow:
    m = dict(row._mapping)
    m["counts"] = dict(m["counts"] or {})
    return BackfillRow(**m)


async def insert_backfill(
    session: AsyncSession,
    *,
    source: str,
    connector_id: int | None,
    date_from: date,
    date_to: date,
) -> BackfillRow:
    row = (
        await session.execute(
            insert(feed_backfills)
            .values(
                source=source,
                connector_id=connector_id,
                date_from=date_from,
                date_to=date_to,
                state="queued",
            )
            .returning(*feed_backfills.c)
        )
    ).one()
    return _backfill(row)


async def get_backfill(session: AsyncSession, source: str, backfill_id: int) -> BackfillRow | None:
    row = (
        await session.execute(
            select(feed_backfills).where(
                feed_backfills.c.source == source, feed_backfills.c.id == backfill_id
            )
        )
    ).first()
    return None if row is None else _backfill(row)


async def list_backfills(session: AsyncSession, source: str, limit: int) -> list[BackfillRow]:
    rows = (
        await session.execute(
            select(feed_backfills)
            .where(feed_backfills.c.source == source)
            .order_by(feed_backfills.c.id.desc())
            .limit(limit)
        )
    ).all()
    return [_backfill(r) for r in rows]


async def claim_backfill(
    session: AsyncSession, *, now: datetime, lease_s: float, exclude_sources: Collection[str]
) -> BackfillRow | None:
    """The oldest queued backfill (or a running one whose worker vanished), leased."""
    query = (
        select(feed_backfills)
        .where(
            or_(
                feed_backfills.c.state == "queued",
                and_(feed_backfills.c.state == "running", feed_backfills.c.lease_until < now),
            )
        )
        .order_by(feed_backfills.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if exclude_sources:
        query = query.where(feed_backfills.c.source.not_in(list(exclude_sources)))
    row = (await session.execute(query)).first()
    if row is None:
        return None
    await session.execute(
        update(feed_backfills)
        .where(feed_backfills.c.id == row.id)
        .values(
            state="running",
            started_at=func.coalesce(feed_backfills.c.started_at, now),
            lease_until=now + timedelta(seconds=lease_s),
        )
    )
    return _backfill(row)


async def update_backfill(session: AsyncSession, backfill_id: int, values: dict[str, Any]) -> None:
    await session.execute(
        update(feed_backfills).where(feed_backfills.c.id == backfill_id).values(**values)
    )


async def backfill_state(session: AsyncSession, backfill_id: int) -> str | None:
    value = (
        await session.execute(
            select(feed_backfills.c.state).where(feed_backfills.c.id == backfill_id)
        )
    ).scalar_one_or_none()
    return None if value is None else str(value)


async def cancel_backfill(session: AsyncSession, source: str, backfill_id: int) -> bool:
    result = await session.execute(
        update(feed_backfills)
        .where(
            feed_backfills.c.source == source,
            feed_backfills.c.id == backfill_id,
            feed_backfills.c.state.in_(["queued", "running"]),
        )
        .values(state="cancelled", finished_at=func.now(), lease_until=None)
        .returning(feed_backfills.c.id)
    )
    return result.first() is not None
