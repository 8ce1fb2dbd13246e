"""The integration dashboard's queries, on moderation's own tables only (live, no copies).

Every article of the pipeline passes through article.normalized into ``review_items``, so the
desk counts what was integrated, reviewed and published itself; per-source errors come from
the dead-letter topics it records in ``dead_letters``. A period is a cohort: the items first
received in it, and what has become of them (the six-month report's figures are built so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, and_, cast, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from portal_moderation.db import dead_letters, decisions, review_items, sources
from portal_moderation.domain import AGE_BUCKETS, ItemState
from portal_moderation.repository import Executor

TIMEZONE = "Asia/Ho_Chi_Minh"  # days are the editors' days (UTC+7)
HUMAN_DECISIONS = ("approved", "rejected", "retracted")


@dataclass(frozen=True)
class Period:
    since: datetime | None
    until: datetime


@dataclass
class Counts:
    integrated: int = 0
    reviewed: int = 0
    published: int = 0
    rejected: int = 0
    retracted: int = 0
    pending: int = 0
    awaiting_post_review: int = 0


def _cohort(period: Period, source: str | None) -> list[ColumnElement[bool]]:
    where = [review_items.c.created_at < period.until]
    if period.since is not None:
        where.append(review_items.c.created_at >= period.since)
    if source is not None:
        where.append(review_items.c.source == source)
    return where


def _count_columns() -> list[Any]:
    state = review_items.c.state

    def n(condition: ColumnElement[bool]) -> Any:
        return func.count().filter(condition)

    return [
        func.count().label("integrated"),
        n(review_items.c.reviewed_at.is_not(None)).label("reviewed"),
        n(state.in_([ItemState.PUBLISHED.value, ItemState.AUTO_PUBLISHED.value])).label(
            "published"
        ),
        n(state == ItemState.REJECTED.value).label("rejected"),
        n(state == ItemState.RETRACTED.value).label("retracted"),
        n(state == ItemState.PENDING.value).label("pending"),
        n(
            and_(state == ItemState.AUTO_PUBLISHED.value, review_items.c.reviewed_at.is_(None))
        ).label("awaiting_post_review"),
    ]


def _counts(row: Any) -> Counts:
    return Counts(**{k: int(getattr(row, k) or 0) for k in Counts.__dataclass_fields__})


async def totals(conn: Executor, period: Period, source: str | None) -> Counts:
    row = (await conn.execute(select(*_count_columns()).where(*_cohort(period, source)))).one()
    return _counts(row)


@dataclass
class SourceRow:
    code: str
    name: str
    policy: str | None
    counts: Counts
    last_received: datetime | None = None
    backlog: int = 0
    median_latency_s: float | None = None
    errors: int = 0
    last_error_at: datetime | None = None
    last_error: str | None = None
    sections_seen: frozenset[str] = frozenset()


async def per_source(conn: Executor, period: Period, source: str | None) -> dict[str, SourceRow]:
    """Every configured source (and any other that sent items), with its figures."""
    known = select(sources.c.code, sources.c.name, sources.c.policy)
    if source is not None:
        known = known.where(sources.c.code == source)
    rows: dict[str, SourceRow] = {
        r.code: SourceRow(r.code, r.name, r.policy, Counts()) for r in await conn.execute(known)
    }
    counted = await conn.execute(
        select(review_items.c.source, *_count_columns())
        .where(*_cohort(period, source))
        .group_by(review_items.c.source)
    )
    for r in counted:
        rows.setdefault(r.source, SourceRow(r.source, r.source, None, Counts())).counts = _counts(r)
    # Health is about now, whatever the period: last arrival, open backlog, sections fed.
    health = select(
        review_items.c.source,
        func.max(review_items.c.received_at).label("last_received"),
        func.count().filter(review_items.c.state == ItemState.PENDING.value).label("backlog"),
    ).group_by(review_items.c.source)
    fed = select(review_items.c.source, review_items.c.section).distinct()
    if source is not None:
        health = health.where(review_items.c.source == source)
        fed = fed.where(review_items.c.source == source)
    for r in await conn.execute(health):
        row = rows.setdefault(r.source, SourceRow(r.source, r.source, None, Counts()))
        row.last_received = r.last_received
        row.backlog = int(r.backlog or 0)
    seen: dict[str, set[str]] = {}
    for r in await conn.execute(fed.where(review_items.c.section.is_not(None))):
        seen.setdefault(r.source, set()).add(r.section)
    for code, sections in seen.items():
        if code in rows:
            rows[code].sections_seen = frozenset(sections)
    for code, median in (await latency_by_source(conn, period, source)).items():
        if code in rows:
            rows[code].median_latency_s = median
    for summary in await dead_letter_summary(conn, period, source):
        code = summary["source"]
        if code is None:
            continue
        row = rows.setdefault(code, SourceRow(code, code, None, Counts()))
        row.errors = summary["errors"]
        row.last_error_at = summary["last_at"]
        row.last_error = summary["last_reason"]
    return rows


def _latency_query(period: Period, source: str | None, by_source: bool) -> Any:
    """Percentiles of how long revisions waited for an editor's approve or reject (each
    decision records its wait), over the decisions made in the period."""
    wait = decisions.c.wait_s
    columns: list[Any] = [
        func.percentile_cont(0.5).within_group(wait).label("median"),
        func.percentile_cont(0.9).within_group(wait).label("p90"),
        func.count().label("n"),
    ]
    where = [wait.is_not(None), decisions.c.decided_at < period.until]
    if period.since is not None:
        where.append(decisions.c.decided_at >= period.since)
    query = select(*columns).where(*where)
    if by_source or source is not None:
        query = query.select_from(
            decisions.join(review_items, review_items.c.article_id == decisions.c.article_id)
        )
    if source is not None:
        query = query.where(review_items.c.source == source)
    if by_source:
        query = query.add_columns(review_items.c.source).group_by(review_items.c.source)
    return query


@dataclass(frozen=True)
class Latency:
    median_s: float | None
    p90_s: float | None
    reviews: int


async def latency(conn: Executor, period: Period, source: str | None) -> Latency:
    row = (await conn.execute(_latency_query(period, source, by_source=False))).one()
    return Latency(row.median, row.p90, int(row.n or 0))


async def latency_by_source(conn: Executor, period: Period, source: str | None) -> dict[str, float]:
    rows = await conn.execute(_latency_query(period, source, by_source=True))
    return {r.source: float(r.median) for r in rows if r.median is not None}


async def backlog_by_age(conn: Executor, source: str | None, now: datetime) -> dict[str, Any]:
    """Items waiting for a person, by age: pending (pre-review) and published awaiting
    post-review (trusted sources)."""
    buckets = []
    for bucket in AGE_BUCKETS:
        oldest = now - bucket.upper if bucket.upper is not None else None
        newest = now - bucket.lower
        condition = review_items.c.received_at < newest
        if oldest is not None:
            condition = and_(condition, review_items.c.received_at >= oldest)
        buckets.append((bucket.code, condition))
    waiting = or_(
        review_items.c.state == ItemState.PENDING.value,
        and_(
            review_items.c.state == ItemState.AUTO_PUBLISHED.value,
            review_items.c.reviewed_at.is_(None),
        ),
    )
    columns: list[Any] = []
    for code, condition in buckets:
        columns.append(
            func.count()
            .filter(condition, review_items.c.state == ItemState.PENDING.value)
            .label(f"pending_{code}")
        )
        columns.append(
            func.count()
            .filter(condition, review_items.c.state == ItemState.AUTO_PUBLISHED.value)
            .label(f"post_{code}")
        )
    columns.append(func.min(review_items.c.received_at).label("oldest"))
    query = select(*columns).where(waiting)
    if source is not None:
        query = query.where(review_items.c.source == source)
    row = (await conn.execute(query)).one()
    return {
        "pending": {b.code: int(getattr(row, f"pending_{b.code}")) for b in AGE_BUCKETS},
        "post_review": {b.code: int(getattr(row, f"post_{b.code}")) for b in AGE_BUCKETS},
        "oldest": row.oldest,
    }


@dataclass(frozen=True)
class Day:
    day: date
    integrated: int
    reviewed: int
    published: int


async def daily(conn: Executor, period: Period, source: str | None) -> list[Day]:
    """Per local day: items first received, first reviewed by a person, and first made public
    (approved or auto-published)."""
    local_day = func.timezone(TIMEZONE, review_items.c.created_at)
    integrated = (
        select(cast(local_day, Date).label("day"), func.count().label("n"))
        .where(*_cohort(period, source))
        .group_by(literal_column("day"))
    )
    reviewed_where = [review_items.c.reviewed_at < period.until]
    if period.since is not None:
        reviewed_where.append(review_items.c.reviewed_at >= period.since)
    if source is not None:
        reviewed_where.append(review_items.c.source == source)
    reviewed = (
        select(
            cast(func.timezone(TIMEZONE, review_items.c.reviewed_at), Date).label("day"),
            func.count().label("n"),
        )
        .where(*reviewed_where)
        .group_by(literal_column("day"))
    )
    published_where = [review_items.c.published_at < period.until]
    if period.since is not None:
        published_where.append(review_items.c.published_at >= period.since)
    if source is not None:
        published_where.append(review_items.c.source == source)
    published = (
        select(
            cast(func.timezone(TIMEZONE, review_items.c.published_at), Date).label("day"),
            func.count().label("n"),
        )
        .where(*published_where)
        .group_by(literal_column("day"))
    )
    days: dict[date, list[int]] = {}
    for index, query in enumerate((integrated, reviewed, published)):
        for r in await conn.execute(query):
            days.setdefault(r.day, [0, 0, 0])[index] = int(r.n)
    return [Day(d, *v) for d, v in sorted(days.items())]


async def rejection_reasons(
    conn: Executor, period: Period, source: str | None, limit: int = 8
) -> list[tuple[str, int]]:
    """Why items were rejected (the editors' reasons, grouped ignoring case and spacing)."""
    reason = func.lower(func.btrim(func.coalesce(decisions.c.reason, "")))
    query = (
        select(func.min(decisions.c.reason).label("reason"), func.count().label("n"))
        .select_from(
            decisions.join(review_items, review_items.c.article_id == decisions.c.article_id)
        )
        .where(decisions.c.action == "rejected", decisions.c.decided_at < period.until)
        .group_by(reason)
        .order_by(func.count().desc(), reason)
        .limit(limit)
    )
    if period.since is not None:
        query = query.where(decisions.c.decided_at >= period.since)
    if source is not None:
        query = query.where(review_items.c.source == source)
    return [(r.reason or "", int(r.n)) for r in await conn.execute(query)]


async def dead_letter_summary(
    conn: Executor, period: Period, source: str | None
) -> list[dict[str, Any]]:
    """Per source: dead letters in the period, the newest one's time and reason."""
    where = [dead_letters.c.failed_at < period.until]
    if period.since is not None:
        where.append(dead_letters.c.failed_at >= period.since)
    if source is not None:
        where.append(dead_letters.c.source == source)
    ranked = (
        select(
            dead_letters.c.source,
            dead_letters.c.failed_at,
            dead_letters.c.reason,
            func.count().over(partition_by=dead_letters.c.source).label("errors"),
            func.row_number()
            .over(
                partition_by=dead_letters.c.source,
                order_by=(dead_letters.c.failed_at.desc(), dead_letters.c.id.desc()),
            )
            .label("rank"),
        )
        .where(*where)
        .subquery()
    )
    rows = await conn.execute(
        select(ranked.c.source, ranked.c.errors, ranked.c.failed_at, ranked.c.reason).where(
            ranked.c.rank == 1
        )
    )
    return [
        {
            "source": r.source,
            "errors": int(r.errors),
            "last_at": r.failed_at,
            "last_reason": r.reason,
        }
        for r in rows
    ]


async def error_types(conn: Executor, period: Period, source: str | None) -> list[tuple[str, int]]:
    where = [dead_letters.c.failed_at < period.until]
    if period.since is not None:
        where.append(dead_letters.c.failed_at >= period.since)
    if source is not None:
        where.append(dead_letters.c.source == source)
    rows = await conn.execute(
        select(dead_letters.c.error_type, func.count().label("n"))
        .where(*where)
        .group_by(dead_letters.c.error_type)
        .order_by(func.count().desc())
    )
    return [(r.error_type, int(r.n)) for r in rows]
