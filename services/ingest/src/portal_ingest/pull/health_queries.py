"""The queries of integration health (read only): fetches and errors per source in a window,
the latest errors, what arrived on any channel, items per state and per section and day, and
partners' refused Kafka messages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal_ingest.db import articles, partner_errors
from portal_ingest.pull.db import feed_fetch_log, feed_items
from portal_ingest.pull.repository import FetchLogRow


async def item_state_counts(
    session: AsyncSession, source: str | None = None
) -> dict[str, dict[str, int]]:
    query = select(feed_items.c.source, feed_items.c.state, func.count()).group_by(
        feed_items.c.source, feed_items.c.state
    )
    if source is not None:
        query = query.where(feed_items.c.source == source)
    out: dict[str, dict[str, int]] = {}
    for src, state, n in (await session.execute(query)).all():
        out.setdefault(src, {})[state] = int(n)
    return out


async def fetch_stats(
    session: AsyncSession, since: datetime, source: str | None = None
) -> dict[str, tuple[int, int]]:
    """Per source: (polls, failed polls) since ``since``."""
    errors = func.count().filter(feed_fetch_log.c.outcome == "error")
    query = (
        select(feed_fetch_log.c.source, func.count(), errors)
        .where(feed_fetch_log.c.started_at >= since)
        .group_by(feed_fetch_log.c.source)
    )
    if source is not None:
        query = query.where(feed_fetch_log.c.source == source)
    return {s: (int(n), int(e)) for s, n, e in (await session.execute(query)).all()}


async def recent_errors(session: AsyncSession, source: str, limit: int) -> list[FetchLogRow]:
    rows = (
        await session.execute(
            select(feed_fetch_log)
            .where(feed_fetch_log.c.source == source, feed_fetch_log.c.outcome == "error")
            .order_by(feed_fetch_log.c.id.desc())
            .limit(limit)
        )
    ).all()
    return [_log(r) for r in rows]


async def last_errors(session: AsyncSession) -> dict[str, FetchLogRow]:
    """The latest failed poll of every source."""
    rows = (
        await session.execute(
            select(feed_fetch_log)
            .distinct(feed_fetch_log.c.source)
            .where(feed_fetch_log.c.outcome == "error")
            .order_by(feed_fetch_log.c.source, feed_fetch_log.c.id.desc())
        )
    ).all()
    return {r.source: _log(r) for r in rows}


def _log(row: Row[Any]) -> FetchLogRow:
    m = dict(row._mapping)
    m["warnings"] = list(m["warnings"] or [])
    m["counts"] = dict(m["counts"] or {})
    return FetchLogRow(**m)


async def arrivals(session: AsyncSession) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per source: (newest first arrival of an article, newest revision)."""
    rows = (
        await session.execute(
            select(
                articles.c.source, func.max(articles.c.created_at), func.max(articles.c.updated_at)
            ).group_by(articles.c.source)
        )
    ).all()
    return {s: (c, u) for s, c, u in rows}


async def arrivals_of(
    session: AsyncSession, source: str
) -> tuple[datetime | None, datetime | None]:
    row = (
        await session.execute(
            select(func.max(articles.c.created_at), func.max(articles.c.updated_at)).where(
                articles.c.source == source
            )
        )
    ).one()
    return row[0], row[1]


async def items_per_section_day(
    session: AsyncSession, *, since: datetime, zone: str, source: str | None = None
) -> dict[str, dict[tuple[str | None, date], int]]:
    """Articles that first arrived since ``since``, per source, section and local day."""
    day = func.date(func.timezone(zone, articles.c.created_at)).label("day")
    query = (
        select(articles.c.source, articles.c.section, day, func.count())
        .where(articles.c.created_at >= since)
        .group_by(articles.c.source, articles.c.section, literal_column("day"))
    )
    if source is not None:
        query = query.where(articles.c.source == source)
    out: dict[str, dict[tuple[str | None, date], int]] = {}
    for src, section, d, n in (await session.execute(query)).all():
        out.setdefault(src, {})[(section, d)] = int(n)
    return out


async def partner_error_counts(
    session: AsyncSession, since: datetime, source: str | None = None
) -> dict[str, int]:
    query = (
        select(partner_errors.c.source, func.count())
        .where(partner_errors.c.failed_at >= since, partner_errors.c.source.is_not(None))
        .group_by(partner_errors.c.source)
    )
    if source is not None:
        query = query.where(partner_errors.c.source == source)
    return {s: int(n) for s, n in (await session.execute(query)).all()}
