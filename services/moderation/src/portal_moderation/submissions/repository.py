"""Queries of the submissions desk (the only module that knows its SQL)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_moderation.db import sources
from portal_moderation.submissions.db import (
    submission_decisions,
    submission_items,
    submission_reports,
)

Executor = AsyncSession | AsyncConnection
items = submission_items


def _row(row: Any) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(at: datetime, item_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), item_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, item_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(item_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("cursor: not a cursor this API gave out") from exc


async def insert_item(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store a new submission; False if it is already here (a redelivered event)."""
    stmt = insert(items).values(**values).on_conflict_do_nothing().returning(items.c.id)
    return (await session.execute(stmt)).first() is not None


async def get_item(conn: Executor, item_id: str) -> dict[str, Any] | None:
    return _row((await conn.execute(select(items).where(items.c.id == item_id))).first())


async def lock_item(session: AsyncSession, item_id: str) -> dict[str, Any] | None:
    query = select(items).where(items.c.id == item_id).with_for_update()
    return _row((await session.execute(query)).first())


async def save_item(session: AsyncSession, item_id: str, values: dict[str, Any]) -> dict[str, Any]:
    result = await session.execute(
        update(items)
        .where(items.c.id == item_id)
        .values(**values, updated_at=func.now())
        .returning(items)
    )
    row = _row(result.first())
    assert row is not None
    return row


async def add_decision(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(submission_decisions.insert().values(**values))


async def history(conn: Executor, item_id: str) -> list[dict[str, Any]]:
    query = (
        select(submission_decisions)
        .where(submission_decisions.c.submission_id == item_id)
        .order_by(submission_decisions.c.id)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def list_items(
    conn: Executor,
    *,
    kinds: list[str] | None,
    state: str | None,
    flagged: bool | None,
    reported: bool,
    agency: str | None,
    context: str | None,
    agency_states: list[str] | None,
    newest_first: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    query = select(items)
    if kinds:
        query = query.where(items.c.kind.in_(kinds))
    if state:
        query = query.where(items.c.state == state)
    if flagged is not None:
        query = query.where(items.c.flagged.is_(flagged))
    if reported:
        query = query.where(items.c.open_reports > 0)
    if agency:
        query = query.where(items.c.routed_agency == agency)
    if agency_states:
        query = query.where(items.c.state.in_(agency_states))
    if context:
        query = query.where(items.c.context_id == context)
    if cursor:
        at, last_id = _decode_cursor(cursor)
        if newest_first:
            query = query.where(
                or_(
                    items.c.submitted_at < at,
                    and_(items.c.submitted_at == at, items.c.id < last_id),
                )
            )
        else:
            query = query.where(
                or_(
                    items.c.submitted_at > at,
                    and_(items.c.submitted_at == at, items.c.id > last_id),
                )
            )
    if newest_first:
        query = query.order_by(items.c.submitted_at.desc(), items.c.id.desc())
    else:
        query = query.order_by(items.c.submitted_at, items.c.id)
    rows = [dict(r._mapping) for r in await conn.execute(query.limit(limit + 1))]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1]["submitted_at"], rows[-1]["id"])
    return Page(rows, next_cursor)


async def counts(conn: Executor, *, agency: str | None = None) -> list[dict[str, Any]]:
    """Per kind and state: how many, how many flagged or reported, the oldest waiting."""
    query = select(
        items.c.kind,
        items.c.state,
        func.count().label("count"),
        func.count().filter(items.c.flagged).label("flagged"),
        func.count().filter(items.c.open_reports > 0).label("reported"),
        func.min(items.c.submitted_at).label("oldest"),
    ).group_by(items.c.kind, items.c.state)
    if agency:
        query = query.where(items.c.routed_agency == agency, items.c.kind == "qa")
    return [
        dict(r._mapping) for r in await conn.execute(query.order_by(items.c.kind, items.c.state))
    ]


async def add_report(session: AsyncSession, values: dict[str, Any]) -> bool:
    stmt = (
        insert(submission_reports)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(submission_reports.c.report_id)
    )
    if (await session.execute(stmt)).first() is None:
        return False
    await session.execute(
        update(items)
        .where(items.c.id == values["submission_id"])
        .values(
            reports=items.c.reports + 1,
            open_reports=items.c.open_reports + 1,
            last_reported_at=func.greatest(
                func.coalesce(items.c.last_reported_at, values["reported_at"]),
                values["reported_at"],
            ),
            updated_at=func.now(),
        )
    )
    return True


async def reports_of(conn: Executor, item_id: str) -> list[dict[str, Any]]:
    query = (
        select(submission_reports)
        .where(submission_reports.c.submission_id == item_id)
        .order_by(submission_reports.c.reported_at)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def feedback_of(conn: Executor, document: str) -> list[dict[str, Any]]:
    """Every feedback on a document (rejected ones left out), by section then time."""
    query = (
        select(items)
        .where(
            items.c.kind == "feedback",
            items.c.context_id == document,
            items.c.state != "rejected",
        )
        .order_by(items.c.section_id.nulls_first(), items.c.submitted_at, items.c.id)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def source_name(conn: Executor, code: str) -> str | None:
    query = select(sources.c.name).where(sources.c.code == code)
    value: str | None = (await conn.execute(query)).scalar_one_or_none()
    return value


async def agency_names(conn: Executor) -> dict[str, str]:
    """The agencies questions can be routed to (the partner sources), code -> name."""
    rows = await conn.execute(select(sources.c.code, sources.c.name).order_by(sources.c.name))
    return {r[0]: r[1] for r in rows}
