"""The intake's statements: what a batch of incoming messages needs to know (sources, articles,
the revisions they name), and storing the new revisions. Each is written once as SQL over arrays
(``sql_arrays``): one statement for any number of messages, prepared once; all run inside the
caller's session (and transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_ingest.domain import SourceInfo, Status
from portal_ingest.sql_arrays import columns


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
    FROM unnest(CAST(:source AS varchar[]), CAST(:article_id AS varchar[]),
                CAST(:revision AS integer[])) AS q(source, article_id, revision)
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
    rows = await conn.execute(_INTAKE_STATE, columns(IntakeQuestion, questions))
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
    raw_object_key: str
    raw_offset: int | None  # with raw_length: its bytes in a pack (None: the whole object)
    raw_length: int | None
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
            CAST(:article_id AS varchar[]), CAST(:source AS varchar[]),
            CAST(:external_id AS varchar[]), CAST(:expected AS integer[]),
            CAST(:revision AS integer[]), CAST(:action AS varchar[]),
            CAST(:content_hash AS varchar[]), CAST(:title AS varchar[]),
            CAST(:section AS varchar[]), CAST(:status AS varchar[]),
            CAST(:status_reason AS text[]), CAST(:status_at AS timestamptz[])
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
            CAST(:r_article_id AS varchar[]), CAST(:r_revision AS integer[]),
            CAST(:r_action AS varchar[]), CAST(:r_channel AS varchar[]),
            CAST(:r_content_hash AS varchar[]), CAST(:r_raw_object_key AS varchar[]),
            CAST(:r_raw_offset AS bigint[]),
            CAST(:r_raw_length AS bigint[]), CAST(:r_event_id AS uuid[]),
            CAST(:r_received_at AS timestamptz[]), CAST(:r_status AS varchar[]),
            CAST(:r_status_reason AS text[])
        ) WITH ORDINALITY AS r(article_id, revision, action, channel, content_hash,
                               raw_object_key, raw_offset, raw_length, event_id, received_at,
                               status, reason, n)
        WHERE r.article_id IN (SELECT article_id FROM stored)
    ),
    revisions AS (
        INSERT INTO article_revisions (article_id, revision, action, channel, content_hash,
                                       raw_object_key, raw_offset, raw_length, event_id,
                                       received_at)
        SELECT article_id, revision, action, channel, content_hash, raw_object_key, raw_offset,
               raw_length, event_id, received_at
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
        columns(NewestRevision, newest) | columns(AcceptedRevision, accepted, prefix="r_"),
    )
    return {r.article_id for r in rows}
