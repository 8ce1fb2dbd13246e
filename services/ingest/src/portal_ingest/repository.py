"""Queries of the ingest database, all inside the caller's session (and transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
                article_revisions.c.event_id,
                article_revisions.c.received_at,
            )
            .where(article_revisions.c.article_id == article_id)
            .order_by(article_revisions.c.revision)
        )
    ).all()
    return [RevisionRow(**r._mapping) for r in rows]


# -- intake: what a batch of incoming messages needs to know, and what it stores ---------------
# Written once as SQL over arrays: one statement for any number of messages, compiled once.


@dataclass(frozen=True)
class StoredArticle:
    """An article's newest revision, as an incoming message is decided against it."""

    revision: int
    content_hash: str
    action: str
    status: Status
    updated_at: datetime
    title: str | None
    section: str | None


@dataclass(frozen=True)
class StoredRevision:
    revision: int
    content_hash: str
    action: str
    received_at: datetime


@dataclass(frozen=True)
class IntakeQuestion:
    """One incoming message: who sends it, which article, which revision number it names."""

    source: str
    article_id: str
    revision: int | None


@dataclass
class IntakeState:
    """What the store says about a batch of incoming messages."""

    sources: dict[str, SourceInfo | None] = field(default_factory=dict)
    articles: dict[str, StoredArticle] = field(default_factory=dict)
    revisions: dict[tuple[str, int], StoredRevision] = field(default_factory=dict)


_INTAKE_STATE = text(
    """
    SELECT q.source, q.article_id, s.code AS source_code, s.active, s.sections,
           a.revision, a.content_hash, a.action, a.status, a.updated_at, a.title, a.section,
           rq.revision AS rq_revision, rq.content_hash AS rq_hash, rq.action AS rq_action,
           rq.received_at AS rq_received_at,
           rl.action AS rl_action, rl.received_at AS rl_received_at
    FROM unnest(CAST(:sources AS varchar[]), CAST(:article_ids AS varchar[]),
                CAST(:revisions AS integer[])) AS q(source, article_id, revision)
    LEFT JOIN sources s ON s.code = q.source
    LEFT JOIN articles a ON a.article_id = q.article_id
    LEFT JOIN article_revisions rq ON rq.article_id = q.article_id AND rq.revision = q.revision
    LEFT JOIN article_revisions rl ON rl.article_id = a.article_id AND rl.revision = a.revision
    """
)

_LOCK_ARTICLES = text(
    "SELECT article_id FROM articles WHERE article_id = ANY(CAST(:ids AS varchar[])) "
    "ORDER BY article_id FOR UPDATE"
)


async def intake_state(
    conn: AsyncConnection | AsyncSession,
    questions: Sequence[IntakeQuestion],
    *,
    lock: bool = False,
) -> IntakeState:
    """The sources, articles and named revisions of ``questions``, in one statement.

    ``lock`` first locks the articles that exist, in key order, until the transaction ends
    (their newest revision cannot change meanwhile)."""
    state = IntakeState()
    if not questions:
        return state
    if lock:
        ids = sorted({q.article_id for q in questions})
        await conn.execute(_LOCK_ARTICLES, {"ids": ids})
    rows = await conn.execute(
        _INTAKE_STATE,
        {
            "sources": [q.source for q in questions],
            "article_ids": [q.article_id for q in questions],
            "revisions": [q.revision for q in questions],
        },
    )
    for r in rows:
        state.sources[r.source] = (
            None
            if r.source_code is None
            else SourceInfo(code=r.source_code, active=r.active, sections=tuple(r.sections or ()))
        )
        if r.revision is None:
            continue
        state.articles[r.article_id] = StoredArticle(
            revision=r.revision,
            content_hash=r.content_hash,
            action=r.action,
            status=Status(r.status),
            updated_at=r.updated_at,
            title=r.title,
            section=r.section,
        )
        if r.rl_action is not None:
            state.revisions[(r.article_id, r.revision)] = StoredRevision(
                r.revision, r.content_hash, r.rl_action, r.rl_received_at
            )
        if r.rq_revision is not None:
            state.revisions[(r.article_id, r.rq_revision)] = StoredRevision(
                r.rq_revision, r.rq_hash, r.rq_action, r.rq_received_at
            )
    return state


@dataclass(frozen=True)
class NewestRevision:
    """What an article's row becomes: its newest revision, replacing ``expected``."""

    article_id: str
    source: str
    external_id: str
    expected: int | None  # the revision the row holds now (None: no row yet)
    revision: int
    action: str
    content_hash: str
    title: str | None
    section: str | None
    status: Status
    status_reason: str | None
    status_at: datetime


@dataclass(frozen=True)
class AcceptedRevision:
    """A revision to keep (and its entry in the partner-visible history)."""

    article_id: str
    revision: int
    action: str
    channel: str
    content_hash: str
    content_json: str | None  # the content as JSON text
    raw_object_key: str
    event_id: UUID
    received_at: datetime
    status: Status
    status_reason: str | None


# Each article's row moves from the revision it was read at to its new newest one, only if it
# still holds that revision (another writer may have stored one meanwhile: then nothing of that
# article is written, and the caller decides again). The UPDATE re-checks the condition on the
# row's latest version after waiting for a concurrent writer; the INSERT of a new article does
# nothing if another writer created it. Only the articles stored get their revisions and history.
_STORE_REVISIONS = text(
    """
    WITH q AS (
        SELECT * FROM unnest(
            CAST(:article_ids AS varchar[]), CAST(:sources AS varchar[]),
            CAST(:external_ids AS varchar[]), CAST(:expected AS integer[]),
            CAST(:revisions AS integer[]), CAST(:actions AS varchar[]),
            CAST(:hashes AS varchar[]), CAST(:titles AS varchar[]), CAST(:sections AS varchar[]),
            CAST(:statuses AS varchar[]), CAST(:reasons AS text[]),
            CAST(:status_at AS timestamptz[])
        ) AS q(article_id, source, external_id, expected, revision, action, content_hash,
               title, section, status, status_reason, status_at)
    ),
    updated AS (
        UPDATE articles a
        SET revision = q.revision, action = q.action, content_hash = q.content_hash,
            title = q.title, section = q.section, status = q.status,
            status_revision = q.revision, status_reason = q.status_reason,
            status_at = q.status_at, updated_at = now()
        FROM q
        WHERE a.article_id = q.article_id AND a.revision = q.expected
        RETURNING a.article_id
    ),
    inserted AS (
        INSERT INTO articles (article_id, source, external_id, revision, action, content_hash,
                              title, section, status, status_revision, status_reason, status_at)
        SELECT article_id, source, external_id, revision, action, content_hash, title, section,
               status, revision, status_reason, status_at
        FROM q WHERE q.expected IS NULL
        ORDER BY article_id
        ON CONFLICT DO NOTHING
        RETURNING article_id
    ),
    stored AS (SELECT article_id FROM updated UNION ALL SELECT article_id FROM inserted),
    r AS (
        SELECT * FROM unnest(
            CAST(:r_article_ids AS varchar[]), CAST(:r_revisions AS integer[]),
            CAST(:r_actions AS varchar[]), CAST(:r_channels AS varchar[]),
            CAST(:r_hashes AS varchar[]), CAST(:r_contents AS text[]),
            CAST(:r_keys AS varchar[]), CAST(:r_event_ids AS uuid[]),
            CAST(:r_received_at AS timestamptz[]), CAST(:r_statuses AS varchar[]),
            CAST(:r_reasons AS text[])
        ) WITH ORDINALITY AS r(article_id, revision, action, channel, content_hash, content,
                               raw_object_key, event_id, received_at, status, reason, n)
        WHERE r.article_id IN (SELECT article_id FROM stored)
    ),
    revisions AS (
        INSERT INTO article_revisions (article_id, revision, action, channel, content_hash,
                                       content, raw_object_key, event_id, received_at)
        SELECT article_id, revision, action, channel, content_hash, CAST(content AS jsonb),
               raw_object_key, event_id, received_at
        FROM r ORDER BY n
    ),
    history AS (
        INSERT INTO article_history (article_id, revision, status, reason, occurred_at)
        SELECT article_id, revision, status, reason, received_at FROM r ORDER BY n
    )
    SELECT article_id FROM stored
    """
)


async def store_revisions(
    session: AsyncSession, newest: Sequence[NewestRevision], accepted: Sequence[AcceptedRevision]
) -> set[str]:
    """Store ``accepted`` (in order) and make ``newest`` each article's newest revision, for
    the articles whose row still holds the expected revision; the ids of those articles."""
    if not newest:
        return set()
    rows = await session.execute(
        _STORE_REVISIONS,
        {
            "article_ids": [n.article_id for n in newest],
            "sources": [n.source for n in newest],
            "external_ids": [n.external_id for n in newest],
            "expected": [n.expected for n in newest],
            "revisions": [n.revision for n in newest],
            "actions": [n.action for n in newest],
            "hashes": [n.content_hash for n in newest],
            "titles": [n.title for n in newest],
            "sections": [n.section for n in newest],
            "statuses": [n.status.value for n in newest],
            "reasons": [n.status_reason for n in newest],
            "status_at": [n.status_at for n in newest],
            "r_article_ids": [a.article_id for a in accepted],
            "r_revisions": [a.revision for a in accepted],
            "r_actions": [a.action for a in accepted],
            "r_channels": [a.channel for a in accepted],
            "r_hashes": [a.content_hash for a in accepted],
            "r_contents": [a.content_json for a in accepted],
            "r_keys": [a.raw_object_key for a in accepted],
            "r_event_ids": [a.event_id for a in accepted],
            "r_received_at": [a.received_at for a in accepted],
            "r_statuses": [a.status.value for a in accepted],
            "r_reasons": [a.status_reason for a in accepted],
        },
    )
    return {r.article_id for r in rows}


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
        FROM unnest(CAST(:h_article_ids AS varchar[]), CAST(:h_revisions AS integer[]),
                    CAST(:h_statuses AS varchar[]), CAST(:h_reasons AS text[]),
                    CAST(:h_occurred_at AS timestamptz[]))
             WITH ORDINALITY AS h(article_id, revision, status, reason, occurred_at, n)
        ORDER BY n
    )
    UPDATE articles a
    SET status = u.status, status_revision = u.revision, status_reason = u.reason,
        status_at = u.at,
        public_path = CASE WHEN u.touch THEN u.public_path ELSE a.public_path END,
        updated_at = now()
    FROM unnest(CAST(:article_ids AS varchar[]), CAST(:revisions AS integer[]),
                CAST(:statuses AS varchar[]), CAST(:reasons AS text[]),
                CAST(:at AS timestamptz[]), CAST(:public_paths AS varchar[]),
                CAST(:touch AS boolean[]))
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
        {
            "article_ids": [u.article_id for u in updates],
            "revisions": [u.revision for u in updates],
            "statuses": [u.status.value for u in updates],
            "reasons": [u.reason for u in updates],
            "at": [u.at for u in updates],
            "public_paths": [u.public_path for u in updates],
            "touch": [u.touch_public_path for u in updates],
            "h_article_ids": [h.article_id for h in history],
            "h_revisions": [h.revision for h in history],
            "h_statuses": [h.status.value for h in history],
            "h_reasons": [h.reason for h in history],
            "h_occurred_at": [h.occurred_at for h in history],
        },
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
    FROM unnest(CAST(:sources AS varchar[]), CAST(:topics AS varchar[]),
                CAST(:partitions AS integer[]), CAST(:offsets AS bigint[]),
                CAST(:external_ids AS varchar[]), CAST(:revisions AS integer[]),
                CAST(:error_types AS varchar[]), CAST(:reasons AS text[]),
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
    rows = await session.execute(
        _INSERT_PARTNER_ERRORS,
        {
            "sources": [e.source for e in errors],
            "topics": [e.topic for e in errors],
            "partitions": [e.partition for e in errors],
            "offsets": [e.offset for e in errors],
            "external_ids": [e.external_id for e in errors],
            "revisions": [e.revision for e in errors],
            "error_types": [e.error_type for e in errors],
            "reasons": [e.reason for e in errors],
            "failed_at": [e.failed_at for e in errors],
        },
    )
    return {(r.topic, r.partition, r.offset) for r in rows}


async def list_partner_errors(
    session: AsyncSession, *, source: str, before_id: int | None, limit: int
) -> list[PartnerErrorRow]:
    query = select(partner_errors).where(partner_errors.c.source == source)
    if before_id is not None:
        query = query.where(partner_errors.c.id < before_id)
    rows = (await session.execute(query.order_by(partner_errors.c.id.desc()).limit(limit))).all()
    return [PartnerErrorRow(**r._mapping) for r in rows]
