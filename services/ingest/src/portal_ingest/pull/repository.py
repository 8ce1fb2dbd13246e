"""Queries of pull integration, all inside the caller's session (and transaction)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_ingest.db import sources
from portal_ingest.pull.db import (
    feed_connectors,
    feed_fetch_log,
    feed_items,
    pull_sources,
)
from portal_ingest.pull.domain import Breaker, BreakerState, ItemState
from portal_runtime.clock import utcnow


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
            "updated_at": utcnow(),
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


# -- fetch log --------------------------------------------------------------------------------


async def insert_fetch_log(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(_INSERT_FETCH_LOG, values)


async def prune_fetch_log(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(feed_fetch_log).where(feed_fetch_log.c.started_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def local_today(session: AsyncSession, zone: str) -> date:
    value = (await session.execute(select(func.date(func.timezone(zone, func.now()))))).scalar_one()
    assert isinstance(value, date)
    return value


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
