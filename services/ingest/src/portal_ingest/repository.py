"""Queries of the ingest database, all inside the caller's session (and transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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
from portal_ingest.sql_arrays import columns


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
    raw_offset: int | None  # with raw_length: its bytes in a pack (None: the whole object)
    raw_length: int | None
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


@dataclass(frozen=True)
class KeyGrant:
    """An API key with what it grants: its agency, as the agency is now."""

    key_id: str
    secret_hash: str
    revoked_at: datetime | None
    source_code: str
    source: SourceInfo | None  # None: the agency no longer exists


_KEY_GRANT = text(
    "SELECT k.key_id, k.secret_hash, k.revoked_at, k.source, s.code, s.active, s.sections "
    "FROM api_keys k LEFT JOIN sources s ON s.code = k.source WHERE k.key_id = :key_id"
)


async def get_key_grant(conn: AsyncConnection | AsyncSession, key_id: str) -> KeyGrant | None:
    """The key and its agency, in one statement; None for an unknown key."""
    row = (await conn.execute(_KEY_GRANT, {"key_id": key_id})).first()
    if row is None:
        return None
    source = (
        None
        if row.code is None
        else SourceInfo(code=row.code, active=row.active, sections=tuple(row.sections or ()))
    )
    return KeyGrant(row.key_id, row.secret_hash, row.revoked_at, row.source, source)


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


async def get_article(session: AsyncSession, article_id: str) -> ArticleRow | None:
    row = (
        await session.execute(select(articles).where(articles.c.article_id == article_id))
    ).first()
    return None if row is None else _article(row)


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
                article_revisions.c.raw_offset,
                article_revisions.c.raw_length,
                article_revisions.c.event_id,
                article_revisions.c.received_at,
            )
            .where(article_revisions.c.article_id == article_id)
            .order_by(article_revisions.c.revision)
        )
    ).all()
    return [RevisionRow(**r._mapping) for r in rows]


# -- partner status ---------------------------------------------------------------------------

_LOCK_STATUSES = text(
    "SELECT article_id, status_revision, status FROM articles "
    "WHERE article_id = ANY(CAST(:ids AS varchar[])) ORDER BY article_id FOR UPDATE"
)


async def lock_statuses(session: AsyncSession, article_ids: set[str]) -> dict[str, StatusState]:
    """The status of each known item among ``article_ids``, locked in key order."""
    if not article_ids:
        return {}
    rows = await session.execute(_LOCK_STATUSES, {"ids": sorted(article_ids)})
    return {r.article_id: StatusState(r.status_revision, Status(r.status)) for r in rows}


@dataclass(frozen=True)
class StatusUpdate:
    """An item's new status (and public path, when ``touch_public_path``)."""

    article_id: str
    revision: int
    status: Status
    reason: str | None
    at: datetime
    public_path: str | None
    touch_public_path: bool


@dataclass(frozen=True)
class HistoryEntry:
    article_id: str
    revision: int
    status: Status
    reason: str | None
    occurred_at: datetime


_SET_STATUSES = text(
    """
    WITH history AS (
        INSERT INTO article_history (article_id, revision, status, reason, occurred_at)
        SELECT article_id, revision, status, reason, occurred_at
        FROM unnest(CAST(:h_article_id AS varchar[]), CAST(:h_revision AS integer[]),
                    CAST(:h_status AS varchar[]), CAST(:h_reason AS text[]),
                    CAST(:h_occurred_at AS timestamptz[]))
             WITH ORDINALITY AS h(article_id, revision, status, reason, occurred_at, n)
        ORDER BY n
    )
    UPDATE articles a
    SET status = u.status, status_revision = u.revision, status_reason = u.reason,
        status_at = u.at,
        public_path = CASE WHEN u.touch THEN u.public_path ELSE a.public_path END,
        updated_at = now()
    FROM unnest(CAST(:article_id AS varchar[]), CAST(:revision AS integer[]),
                CAST(:status AS varchar[]), CAST(:reason AS text[]),
                CAST(:at AS timestamptz[]), CAST(:public_path AS varchar[]),
                CAST(:touch_public_path AS boolean[]))
         AS u(article_id, revision, status, reason, at, public_path, touch)
    WHERE a.article_id = u.article_id
    """
)


async def set_statuses(
    session: AsyncSession, updates: Sequence[StatusUpdate], history: Sequence[HistoryEntry]
) -> None:
    """Each item's new status (one update per item) and the history entries, in one
    statement."""
    if not updates and not history:
        return
    await session.execute(
        _SET_STATUSES,
        columns(StatusUpdate, updates) | columns(HistoryEntry, history, prefix="h_"),
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


_INSERT_PARTNER_ERRORS = text(
    """
    INSERT INTO partner_errors (source, topic, partition, "offset", external_id, revision,
                                error_type, reason, failed_at)
    SELECT source, topic, partition, "offset", external_id, revision, error_type, reason,
           failed_at
    FROM unnest(CAST(:source AS varchar[]), CAST(:topic AS varchar[]),
                CAST(:partition AS integer[]), CAST(:offset AS bigint[]),
                CAST(:external_id AS varchar[]), CAST(:revision AS integer[]),
                CAST(:error_type AS varchar[]), CAST(:reason AS text[]),
                CAST(:failed_at AS timestamptz[]))
         WITH ORDINALITY AS e(source, topic, partition, "offset", external_id, revision,
                              error_type, reason, failed_at, n)
    ORDER BY n
    ON CONFLICT ON CONSTRAINT uq_partner_errors_position DO NOTHING
    RETURNING topic, partition, "offset"
    """
)


@dataclass(frozen=True)
class PartnerError:
    """A refused partner message, as the partner reads it in ``GET /v1/errors``."""

    source: str | None
    topic: str
    partition: int
    offset: int
    external_id: str | None
    revision: int | None
    error_type: str
    reason: str
    failed_at: datetime


async def insert_partner_errors(
    session: AsyncSession, errors: Sequence[PartnerError]
) -> set[tuple[str, int, int]]:
    """Record refused messages, in one statement; the positions (topic, partition, offset)
    recorded now (a message recorded before is not recorded again)."""
    if not errors:
        return set()
    rows = await session.execute(_INSERT_PARTNER_ERRORS, columns(PartnerError, errors))
    return {(r.topic, r.partition, r.offset) for r in rows}


async def list_partner_errors(
    session: AsyncSession, *, source: str, before_id: int | None, limit: int
) -> list[PartnerErrorRow]:
    query = select(partner_errors).where(partner_errors.c.source == source)
    if before_id is not None:
        query = query.where(partner_errors.c.id < before_id)
    rows = (await session.execute(query.order_by(partner_errors.c.id.desc()).limit(limit))).all()
    return [PartnerErrorRow(**r._mapping) for r in rows]
