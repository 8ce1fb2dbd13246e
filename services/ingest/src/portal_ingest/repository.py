"""Queries of the ingest database, all inside the caller's session (and transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_ingest.db import (
    api_keys,
    article_history,
    article_revisions,
    articles,
    kafka_credentials,
    partner_errors,
    sources,
)
from portal_ingest.domain import SourceInfo, Status, StatusState


@dataclass(frozen=True)
class SourceRow:
    code: str
    name: str
    kind: str
    sections: tuple[str, ...]
    active: bool
    created_at: datetime
    updated_at: datetime

    def info(self) -> SourceInfo:
        return SourceInfo(code=self.code, active=self.active, sections=self.sections)


@dataclass(frozen=True)
class ApiKeyRow:
    key_id: str
    source: str
    secret_hash: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class KafkaCredentialRow:
    source: str
    username: str
    topic: str
    created_at: datetime
    rotated_at: datetime


@dataclass(frozen=True)
class ArticleRow:
    article_id: str
    seq: int
    source: str
    external_id: str
    revision: int
    action: str
    content_hash: str
    title: str | None
    section: str | None
    status: Status
    status_revision: int
    status_reason: str | None
    status_at: datetime
    public_path: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RevisionRow:
    article_id: str
    revision: int
    action: str
    channel: str
    content_hash: str
    raw_object_key: str
    event_id: UUID
    received_at: datetime


@dataclass(frozen=True)
class HistoryRow:
    revision: int
    status: Status
    reason: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class PartnerErrorRow:
    id: int
    source: str | None
    topic: str
    partition: int
    offset: int
    external_id: str | None
    revision: int | None
    error_type: str
    reason: str
    failed_at: datetime


def _source(row: Row[Any]) -> SourceRow:
    m = dict(row._mapping)
    m["sections"] = tuple(m["sections"] or ())
    return SourceRow(**m)


def _article(row: Row[Any]) -> ArticleRow:
    m = dict(row._mapping)
    m["status"] = Status(m["status"])
    return ArticleRow(**m)


# -- sources ----------------------------------------------------------------------------------


async def upsert_source(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    kind: str,
    sections: tuple[str, ...],
    active: bool,
) -> tuple[SourceRow, bool]:
    """Create or replace a source; returns it and whether it was created."""
    values = {"name": name, "kind": kind, "sections": list(sections), "active": active}
    base = insert(sources).values(code=code, **values)
    stmt = base.on_conflict_do_update(
        index_elements=[sources.c.code], set_={**values, "updated_at": func.now()}
    ).returning(*sources.c, text("(xmax = 0) AS created"))
    row = (await session.execute(stmt)).one()
    m = dict(row._mapping)
    created = bool(m.pop("created"))
    m["sections"] = tuple(m["sections"] or ())
    return SourceRow(**m), created


async def get_source(session: AsyncSession, code: str) -> SourceRow | None:
    row = (await session.execute(select(sources).where(sources.c.code == code))).first()
    return None if row is None else _source(row)


async def list_sources(session: AsyncSession) -> list[SourceRow]:
    rows = (await session.execute(select(sources).order_by(sources.c.code))).all()
    return [_source(r) for r in rows]


# -- API keys ---------------------------------------------------------------------------------


async def insert_api_key(
    session: AsyncSession, *, key_id: str, source: str, secret_hash: str, label: str | None
) -> ApiKeyRow:
    row = (
        await session.execute(
            insert(api_keys)
            .values(key_id=key_id, source=source, secret_hash=secret_hash, label=label)
            .returning(*api_keys.c)
        )
    ).one()
    return ApiKeyRow(**row._mapping)


async def list_api_keys(session: AsyncSession, source: str) -> list[ApiKeyRow]:
    rows = (
        await session.execute(
            select(api_keys).where(api_keys.c.source == source).order_by(api_keys.c.created_at)
        )
    ).all()
    return [ApiKeyRow(**r._mapping) for r in rows]


async def get_api_key(session: AsyncSession, key_id: str) -> ApiKeyRow | None:
    row = (await session.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
    return None if row is None else ApiKeyRow(**row._mapping)


async def revoke_api_key(session: AsyncSession, source: str, key_id: str) -> bool:
    """Revoke a key of ``source`` (again: no change); False if it has no such key."""
    result = await session.execute(
        update(api_keys)
        .where(api_keys.c.source == source, api_keys.c.key_id == key_id)
        .values(revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
        .returning(api_keys.c.key_id)
    )
    return result.first() is not None


# -- Kafka credentials ------------------------------------------------------------------------


async def upsert_kafka_credential(
    session: AsyncSession, *, source: str, username: str, topic: str
) -> KafkaCredentialRow:
    base = insert(kafka_credentials).values(source=source, username=username, topic=topic)
    stmt = base.on_conflict_do_update(
        index_elements=[kafka_credentials.c.source],
        set_={"username": username, "topic": topic, "rotated_at": func.now()},
    ).returning(*kafka_credentials.c)
    return KafkaCredentialRow(**(await session.execute(stmt)).one()._mapping)


async def get_kafka_credential(session: AsyncSession, source: str) -> KafkaCredentialRow | None:
    row = (
        await session.execute(select(kafka_credentials).where(kafka_credentials.c.source == source))
    ).first()
    return None if row is None else KafkaCredentialRow(**row._mapping)


# -- articles ---------------------------------------------------------------------------------


async def lock_article(session: AsyncSession, article_id: str) -> None:
    """Serialise writers of one article until the transaction ends (also before it exists)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(article_id, 0))))


async def get_article(session: AsyncSession, article_id: str) -> ArticleRow | None:
    row = (
        await session.execute(select(articles).where(articles.c.article_id == article_id))
    ).first()
    return None if row is None else _article(row)


async def get_revision(session: AsyncSession, article_id: str, revision: int) -> RevisionRow | None:
    row = (
        await session.execute(
            select(
                article_revisions.c.article_id,
                article_revisions.c.revision,
                article_revisions.c.action,
                article_revisions.c.channel,
                article_revisions.c.content_hash,
                article_revisions.c.raw_object_key,
                article_revisions.c.event_id,
                article_revisions.c.received_at,
            ).where(
                article_revisions.c.article_id == article_id,
                article_revisions.c.revision == revision,
            )
        )
    ).first()
    return None if row is None else RevisionRow(**row._mapping)


async def list_revisions(session: AsyncSession, article_id: str) -> list[RevisionRow]:
    rows = (
        await session.execute(
            select(
                article_revisions.c.article_id,
                article_revisions.c.revision,
                article_revisions.c.action,
                article_revisions.c.channel,
                article_revisions.c.content_hash,
                article_revisions.c.raw_object_key,
                article_revisions.c.event_id,
                article_revisions.c.received_at,
            )
            .where(article_revisions.c.article_id == article_id)
            .order_by(article_revisions.c.revision)
        )
    ).all()
    return [RevisionRow(**r._mapping) for r in rows]


async def save_revision(
    session: AsyncSession,
    *,
    article_id: str,
    source: str,
    external_id: str,
    revision: int,
    action: str,
    channel: str,
    content_hash: str,
    content: dict[str, Any] | None,
    title: str | None,
    section: str | None,
    raw_object_key: str,
    event_id: UUID,
    received_at: datetime,
    status: Status,
    status_reason: str | None,
) -> None:
    """Make ``revision`` the article's newest: revision row, article row, history entry."""
    newest: dict[str, Any] = {
        "revision": revision,
        "action": action,
        "content_hash": content_hash,
        "status": status.value,
        "status_revision": revision,
        "status_reason": status_reason,
        "status_at": received_at,
    }
    descriptive = {"title": title, "section": section}
    on_update = {**newest, "updated_at": func.now()}
    if content is not None:  # a retraction keeps the last known title and section
        on_update.update(descriptive)
    stmt = insert(articles).values(
        article_id=article_id, source=source, external_id=external_id, **newest, **descriptive
    )
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[articles.c.article_id], set_=on_update)
    )
    await session.execute(
        insert(article_revisions).values(
            article_id=article_id,
            revision=revision,
            action=action,
            channel=channel,
            content_hash=content_hash,
            content=content,
            raw_object_key=raw_object_key,
            event_id=event_id,
            received_at=received_at,
        )
    )
    await add_history(
        session,
        article_id=article_id,
        revision=revision,
        status=status,
        reason=status_reason,
        occurred_at=received_at,
    )


async def set_status(
    session: AsyncSession,
    *,
    article_id: str,
    revision: int,
    status: Status,
    reason: str | None,
    occurred_at: datetime,
    public_path: str | None,
    touch_public_path: bool,
) -> None:
    values: dict[str, Any] = {
        "status": status.value,
        "status_revision": revision,
        "status_reason": reason,
        "status_at": occurred_at,
        "updated_at": func.now(),
    }
    if touch_public_path:
        values["public_path"] = public_path
    await session.execute(
        update(articles).where(articles.c.article_id == article_id).values(**values)
    )


async def lock_statuses(session: AsyncSession, article_ids: set[str]) -> dict[str, StatusState]:
    """The status of each known item among ``article_ids``, locked in key order."""
    if not article_ids:
        return {}
    rows = await session.execute(
        select(articles.c.article_id, articles.c.status_revision, articles.c.status)
        .where(articles.c.article_id.in_(sorted(article_ids)))
        .order_by(articles.c.article_id)
        .with_for_update()
    )
    return {r.article_id: StatusState(r.status_revision, Status(r.status)) for r in rows}


async def set_statuses(session: AsyncSession, updates: dict[str, dict[str, Any]]) -> None:
    """Each item's new status (one statement per set of columns)."""
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for article_id, values in updates.items():
        shapes.setdefault(frozenset(values), []).append({"b_article_id": article_id, **values})
    for columns, rows in shapes.items():
        stmt = (
            update(articles)
            .where(articles.c.article_id == bindparam("b_article_id"))
            .values({c: bindparam(c) for c in columns} | {"updated_at": func.now()})
        )
        await session.execute(stmt, rows)


async def add_histories(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(article_history), rows)


async def add_history(
    session: AsyncSession,
    *,
    article_id: str,
    revision: int,
    status: Status,
    reason: str | None,
    occurred_at: datetime,
) -> None:
    await session.execute(
        insert(article_history).values(
            article_id=article_id,
            revision=revision,
            status=status.value,
            reason=reason,
            occurred_at=occurred_at,
        )
    )


async def list_history(session: AsyncSession, article_id: str) -> list[HistoryRow]:
    rows = (
        await session.execute(
            select(
                article_history.c.revision,
                article_history.c.status,
                article_history.c.reason,
                article_history.c.occurred_at,
            )
            .where(article_history.c.article_id == article_id)
            .order_by(article_history.c.id)
        )
    ).all()
    return [
        HistoryRow(
            revision=r.revision, status=Status(r.status), reason=r.reason, occurred_at=r.occurred_at
        )
        for r in rows
    ]


async def list_articles(
    session: AsyncSession,
    *,
    source: str,
    status: Status | None,
    before_seq: int | None,
    limit: int,
) -> list[ArticleRow]:
    """Newest first; ``before_seq`` continues a listing (keyset paging)."""
    query = select(articles).where(articles.c.source == source)
    if status is not None:
        query = query.where(articles.c.status == status.value)
    if before_seq is not None:
        query = query.where(articles.c.seq < before_seq)
    rows = (await session.execute(query.order_by(articles.c.seq.desc()).limit(limit))).all()
    return [_article(r) for r in rows]


# -- partner errors ---------------------------------------------------------------------------


async def insert_partner_error(
    session: AsyncSession,
    *,
    source: str | None,
    topic: str,
    partition: int,
    offset: int,
    external_id: str | None,
    revision: int | None,
    error_type: str,
    reason: str,
    failed_at: datetime,
) -> bool:
    """Record a refused message; False if this message (topic/partition/offset) already was."""
    result = await session.execute(
        insert(partner_errors)
        .values(
            source=source,
            topic=topic,
            partition=partition,
            offset=offset,
            external_id=external_id,
            revision=revision,
            error_type=error_type,
            reason=reason,
            failed_at=failed_at,
        )
        .on_conflict_do_nothing(constraint="uq_partner_errors_position")
        .returning(partner_errors.c.id)
    )
    return result.first() is not None


async def list_partner_errors(
    session: AsyncSession, *, source: str, before_id: int | None, limit: int
) -> list[PartnerErrorRow]:
    query = select(partner_errors).where(partner_errors.c.source == source)
    if before_id is not None:
        query = query.where(partner_errors.c.id < before_id)
    rows = (await session.execute(query.order_by(partner_errors.c.id.desc()).limit(limit))).all()
    return [PartnerErrorRow(**r._mapping) for r in rows]
