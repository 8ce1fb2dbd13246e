"""Queries of pull integration, all inside the caller's session (and transaction)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_ingest.db import articles, partner_errors, sources
from portal_ingest.pull.db import (
    feed_backfills,
    feed_connectors,
    feed_fetch_log,
    feed_items,
    pull_sources,
)
from portal_ingest.pull.domain import Breaker, BreakerState, ItemState


@dataclass(frozen=True)
class PullSourceRow:
    source: str
    categories: dict[str, str]
    paused: bool
    paused_at: datetime | None
    paused_reason: str | None
    breaker: Breaker
    updated_at: datetime


@dataclass(frozen=True)
class ConnectorRow:
    id: int
    source: str
    position: int
    kind: str
    url: str
    categories: dict[str, str]
    section: str | None
    interval_s: int
    fetch_full_page: bool
    retract_missing: bool
    enabled: bool
    lookback_days: int
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    next_fetch_at: datetime
    lease_until: datetime | None
    consecutive_failures: int
    first_polled_at: datetime | None
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    last_outcome: str | None
    last_http_status: int | None
    last_error_kind: str | None
    last_error: str | None
    last_error_at: datetime | None
    last_warnings: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ItemRow:
    source: str
    key_hash: str
    id: int
    item_key: str
    external_id: str
    article_id: str
    connector_id: int | None
    url: str | None
    title: str | None
    categories: list[str]
    section: str | None
    fingerprint: str
    state: ItemState
    reason: str | None
    attempts: int
    revision: int | None
    published_at: datetime | None
    held_content: dict[str, Any] | None
    held_raw: bytes | None
    first_seen_at: datetime
    last_seen_at: datetime
    missing_polls: int
    missing_since: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class FetchLogRow:
    id: int
    source: str
    connector_id: int | None
    url: str
    trigger: str
    started_at: datetime
    duration_ms: int
    outcome: str
    error_kind: str | None
    http_status: int | None
    message: str | None
    warnings: list[str]
    counts: dict[str, int]


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


def _pull_source(row: Row[Any]) -> PullSourceRow:
    m = row._mapping
    return PullSourceRow(
        source=m["source"],
        categories=dict(m["categories"] or {}),
        paused=m["paused"],
        paused_at=m["paused_at"],
        paused_reason=m["paused_reason"],
        breaker=Breaker(
            BreakerState(m["breaker_state"]),
            m["breaker_failures"],
            m["breaker_opened"],
            m["breaker_open_until"],
        ),
        updated_at=m["updated_at"],
    )


def _connector(row: Row[Any]) -> ConnectorRow:
    m = {k: row._mapping[k] for k in (c.key for c in feed_connectors.c)}
    m["categories"] = dict(m["categories"] or {})
    m["last_warnings"] = list(m["last_warnings"] or [])
    return ConnectorRow(**m)


def _item(row: Row[Any]) -> ItemRow:
    m = {k: row._mapping[k] for k in (c.key for c in feed_items.c)}
    m["state"] = ItemState(m["state"])
    m["categories"] = list(m["categories"] or [])
    return ItemRow(**m)


def _backfill(row: Row[Any]) -> BackfillRow:
    m = dict(row._mapping)
    m["counts"] = dict(m["counts"] or {})
    return BackfillRow(**m)


# -- per-source pull state --------------------------------------------------------------------


async def ensure_pull_source(session: AsyncSession, source: str) -> None:
    await session.execute(insert(pull_sources).values(source=source).on_conflict_do_nothing())


async def get_pull_source(
    session: AsyncSession, source: str, *, for_update: bool = False
) -> PullSourceRow | None:
    query = _PULL_SOURCE_FOR_UPDATE if for_update else _PULL_SOURCE
    row = (await session.execute(query, {"source": source})).first()
    return None if row is None else _pull_source(row)


async def list_pull_sources(session: AsyncSession) -> dict[str, PullSourceRow]:
    rows = (await session.execute(select(pull_sources))).all()
    return {r.source: _pull_source(r) for r in rows}


async def set_source_categories(
    session: AsyncSession, source: str, categories: dict[str, str]
) -> None:
    await session.execute(
        update(pull_sources)
        .where(pull_sources.c.source == source)
        .values(categories=categories, updated_at=func.now())
    )


async def set_paused(
    session: AsyncSession, source: str, *, paused: bool, reason: str | None, now: datetime
) -> None:
    await session.execute(
        update(pull_sources)
        .where(pull_sources.c.source == source)
        .values(
            paused=paused,
            paused_at=now if paused else None,
            paused_reason=reason if paused else None,
            updated_at=func.now(),
        )
    )


async def set_breaker(session: AsyncSession, source: str, breaker: Breaker) -> None:
    await session.execute(
        update(pull_sources)
        .where(pull_sources.c.source == source)
        .values(
            breaker_state=breaker.state.value,
            breaker_failures=breaker.failures,
            breaker_opened=breaker.opened,
            breaker_open_until=breaker.open_until,
            updated_at=func.now(),
        )
    )


# -- connectors -------------------------------------------------------------------------------


async def list_connectors(session: AsyncSession, source: str) -> list[ConnectorRow]:
    rows = (
        await session.execute(
            select(feed_connectors)
            .where(feed_connectors.c.source == source)
            .order_by(feed_connectors.c.position, feed_connectors.c.id)
        )
    ).all()
    return [_connector(r) for r in rows]


async def list_all_connectors(session: AsyncSession) -> list[ConnectorRow]:
    rows = (
        await session.execute(
            select(feed_connectors).order_by(feed_connectors.c.source, feed_connectors.c.position)
        )
    ).all()
    return [_connector(r) for r in rows]


async def get_connector(session: AsyncSession, connector_id: int) -> ConnectorRow | None:
    row = (
        await session.execute(select(feed_connectors).where(feed_connectors.c.id == connector_id))
    ).first()
    return None if row is None else _connector(row)


# Statements of every poll, built once (constructing them costs more than running them).
_sibling = feed_connectors.alias("sibling")
_POLL_CONNECTOR = (
    select(
        feed_connectors,
        pull_sources.c.categories.label("source_categories"),
        select(func.array_agg(_sibling.c.id))
        .where(_sibling.c.source == feed_connectors.c.source)
        .scalar_subquery()
        .label("sibling_ids"),
    )
    .outerjoin(pull_sources, pull_sources.c.source == feed_connectors.c.source)
    .where(feed_connectors.c.id == bindparam("connector_id"))
)
_PULL_SOURCE = select(pull_sources).where(pull_sources.c.source == bindparam("source"))
_PULL_SOURCE_FOR_UPDATE = _PULL_SOURCE.with_for_update()
_FINISH_POLL = update(feed_connectors).where(feed_connectors.c.id == bindparam("b_connector_id"))
_INSERT_FETCH_LOG = insert(feed_fetch_log)


async def get_connector_for_poll(
    session: AsyncSession, connector_id: int
) -> tuple[ConnectorRow, dict[str, str], list[int]] | None:
    """A connector, its source's category mapping and its sibling connectors, in one query."""
    row = (await session.execute(_POLL_CONNECTOR, {"connector_id": connector_id})).first()
    if row is None:
        return None
    return (
        _connector(row),
        dict(row._mapping["source_categories"] or {}),
        list(row._mapping["sibling_ids"] or []),
    )


async def replace_connectors(
    session: AsyncSession, source: str, configs: Sequence[dict[str, Any]]
) -> None:
    """Make ``configs`` the source's connectors. A connector with the same kind and URL keeps
    its id, poll state and items; the others are removed (their items stay, unowned)."""
    keep = [(c["kind"], c["url"]) for c in configs]
    stale = delete(feed_connectors).where(feed_connectors.c.source == source)
    if keep:
        stale = stale.where(~tuple_(feed_connectors.c.kind, feed_connectors.c.url).in_(keep))
    await session.execute(stale)
    for position, config in enumerate(configs):
        values = {**config, "position": position}
        settable = {k: v for k, v in values.items() if k not in ("kind", "url", "next_fetch_at")}
        await session.execute(
            insert(feed_connectors)
            .values(source=source, **values)
            .on_conflict_do_update(
                constraint="uq_feed_connectors_source_kind_url",
                set_={**settable, "updated_at": func.now()},
            )
        )


async def schedule_now(session: AsyncSession, source: str, now: datetime) -> None:
    await session.execute(
        update(feed_connectors).where(feed_connectors.c.source == source).values(next_fetch_at=now)
    )


async def claim_due(
    session: AsyncSession, *, now: datetime, limit: int, lease_s: float
) -> list[ConnectorRow]:
    """Lease up to ``limit`` connectors that are due, of active, unpaused sources whose
    breaker is closed (or whose cool-down ended: then one trial connector, half-open)."""
    p = pull_sources
    c = feed_connectors
    rows = (
        await session.execute(
            select(c, p.c.breaker_state, p.c.breaker_failures, p.c.breaker_opened)
            .join(sources, and_(sources.c.code == c.c.source, sources.c.active))
            .outerjoin(p, p.c.source == c.c.source)
            .where(
                c.c.enabled,
                c.c.next_fetch_at <= now,
                or_(c.c.lease_until.is_(None), c.c.lease_until < now),
                ~func.coalesce(p.c.paused, False),
                or_(p.c.breaker_open_until.is_(None), p.c.breaker_open_until <= now),
            )
            .order_by(c.c.next_fetch_at)
            .limit(limit)
            .with_for_update(of=c, skip_locked=True)
        )
    ).all()
    chosen: list[ConnectorRow] = []
    trial_sources: set[str] = set()
    for row in rows:
        state = row._mapping["breaker_state"]
        source = row._mapping["source"]
        if state in (BreakerState.OPEN.value, BreakerState.HALF_OPEN.value):
            if source in trial_sources:
                continue
            trial_sources.add(source)
            await session.execute(
                update(p)
                .where(p.c.source == source)
                .values(
                    breaker_state=BreakerState.HALF_OPEN.value,
                    breaker_open_until=now + timedelta(seconds=lease_s),
                )
            )
        chosen.append(_connector(row))
    if chosen:
        await session.execute(
            update(c)
            .where(c.c.id.in_([x.id for x in chosen]))
            .values(lease_until=now + timedelta(seconds=lease_s))
        )
    return chosen


async def claim_source(
    session: AsyncSession, source: str, *, now: datetime, lease_s: float
) -> tuple[list[ConnectorRow], list[ConnectorRow]]:
    """Lease every enabled connector of ``source`` now (an operator's fetch); returns the
    leased ones and those already being polled."""
    c = feed_connectors
    rows = (
        await session.execute(
            select(c)
            .where(c.c.source == source, c.c.enabled)
            .order_by(c.c.position)
            .with_for_update()
        )
    ).all()
    free = [_connector(r) for r in rows if r.lease_until is None or r.lease_until < now]
    busy = [_connector(r) for r in rows if not (r.lease_until is None or r.lease_until < now)]
    if free:
        await session.execute(
            update(c)
            .where(c.c.id.in_([x.id for x in free]))
            .values(lease_until=now + timedelta(seconds=lease_s))
        )
    return free, busy


async def release_lease(session: AsyncSession, connector_id: int) -> None:
    await session.execute(
        update(feed_connectors).where(feed_connectors.c.id == connector_id).values(lease_until=None)
    )


async def finish_poll(session: AsyncSession, connector_id: int, values: dict[str, Any]) -> None:
    await session.execute(
        _FINISH_POLL,
        {
            **values,
            "lease_until": None,
            "updated_at": datetime.now(UTC),
            "b_connector_id": connector_id,
        },
    )


# -- items ------------------------------------------------------------------------------------


async def get_items(
    session: AsyncSession, source: str, key_hashes: Collection[str]
) -> dict[str, ItemRow]:
    if not key_hashes:
        return {}
    rows = (
        await session.execute(
            select(feed_items).where(
                feed_items.c.source == source, feed_items.c.key_hash.in_(list(key_hashes))
            )
        )
    ).all()
    return {r.key_hash: _item(r) for r in rows}


async def get_item_by_id(session: AsyncSession, source: str, item_id: int) -> ItemRow | None:
    row = (
        await session.execute(
            select(feed_items).where(feed_items.c.source == source, feed_items.c.id == item_id)
        )
    ).first()
    return None if row is None else _item(row)


async def upsert_item(session: AsyncSession, values: dict[str, Any]) -> None:
    settable = {k: v for k, v in values.items() if k not in ("source", "key_hash")}
    await session.execute(
        insert(feed_items)
        .values(**values)
        .on_conflict_do_update(
            constraint="pk_feed_items",
            set_={**settable, "updated_at": func.now()},
        )
    )


async def mark_seen(
    session: AsyncSession, source: str, key_hashes: Collection[str], now: datetime
) -> None:
    if not key_hashes:
        return
    await session.execute(
        update(feed_items)
        .where(feed_items.c.source == source, feed_items.c.key_hash.in_(list(key_hashes)))
        .values(last_seen_at=now, missing_polls=0, missing_since=None)
    )


async def listed_items_missing(
    session: AsyncSession,
    connector_id: int,
    present: Collection[str],
    *,
    newer_than: datetime | None = None,
    flagged_only: bool = False,
) -> list[ItemRow]:
    """Items this connector sent to the pipeline that its latest listing lacks (only those
    dated after ``newer_than``; only those already found missing with ``flagged_only``)."""
    query = select(feed_items).where(
        feed_items.c.connector_id == connector_id,
        feed_items.c.state.in_([ItemState.INGESTED.value, ItemState.RELEASED.value]),
    )
    if newer_than is not None:
        query = query.where(feed_items.c.published_at > newer_than)
    if flagged_only:
        query = query.where(feed_items.c.missing_polls > 0)
    rows = (await session.execute(query)).all()
    return [_item(r) for r in rows if r.key_hash not in present]


async def update_item(
    session: AsyncSession, source: str, key_hash: str, values: dict[str, Any]
) -> None:
    await session.execute(
        update(feed_items)
        .where(feed_items.c.source == source, feed_items.c.key_hash == key_hash)
        .values(**values, updated_at=func.now())
    )


async def count_retry_work(session: AsyncSession, connector_id: int, max_attempts: int) -> int:
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(feed_items)
                .where(
                    feed_items.c.connector_id == connector_id,
                    feed_items.c.state == ItemState.FAILED.value,
                    feed_items.c.attempts < max_attempts,
                )
            )
        ).scalar_one()
    )


async def list_items(
    session: AsyncSession,
    source: str,
    *,
    states: Sequence[ItemState],
    before_id: int | None,
    limit: int,
) -> list[ItemRow]:
    query = select(feed_items).where(
        feed_items.c.source == source, feed_items.c.state.in_([s.value for s in states])
    )
    if before_id is not None:
        query = query.where(feed_items.c.id < before_id)
    rows = (await session.execute(query.order_by(feed_items.c.id.desc()).limit(limit))).all()
    return [_item(r) for r in rows]


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


# -- fetch log --------------------------------------------------------------------------------


async def insert_fetch_log(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(_INSERT_FETCH_LOG, values)


async def prune_fetch_log(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(feed_fetch_log).where(feed_fetch_log.c.started_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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


# -- what arrived (every channel) -------------------------------------------------------------


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


async def local_today(session: AsyncSession, zone: str) -> date:
    value = (await session.execute(select(func.date(func.timezone(zone, func.now()))))).scalar_one()
    assert isinstance(value, date)
    return value


# -- backfills --------------------------------------------------------------------------------


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


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
