"""Queries on the engagement service's tables (the only module that knows the SQL).

Public reads select explicit columns of ``submissions`` and never touch ``contacts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_engagement.db import (
    articles,
    contacts,
    dialogue_events,
    dialogues,
    feedback_documents,
    reports,
    status_tokens,
    submission_steps,
    submissions,
)
from portal_runtime.upsert import Upsert, from_proposed

Executor = AsyncSession | AsyncConnection
LIVE_CHANNEL = "engagement_live"


def _row(row: Any) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int


# --- catalog: topics, dialogues, documents ----------------------------------------------------


async def upsert_topic(
    session: AsyncSession, table: Table, code: str, values: dict[str, Any]
) -> bool:
    """Create or update a topic; True when it was created."""
    stmt = insert(table).values(code=code, **values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[table.c.code], set_={**values, "updated_at": func.now()}
    ).returning(text("(xmax = 0) AS created"))
    return bool((await session.execute(upsert)).scalar_one())


async def insert_missing_topics(
    session: AsyncSession, table: Table, items: list[dict[str, Any]]
) -> int:
    if not items:
        return 0
    stmt = insert(table).values(items).on_conflict_do_nothing().returning(table.c.code)
    return len((await session.execute(stmt)).all())


async def list_topics(conn: Executor, table: Table, *, active_only: bool) -> list[dict[str, Any]]:
    query = select(table).order_by(table.c.position, table.c.code)
    if active_only:
        query = query.where(table.c.active)
    return _rows(await conn.execute(query))


async def get_topic(conn: Executor, table: Table, code: str) -> dict[str, Any] | None:
    return _row((await conn.execute(select(table).where(table.c.code == code))).first())


async def upsert_dialogue(session: AsyncSession, code: str, values: dict[str, Any]) -> bool:
    stmt = insert(dialogues).values(code=code, **values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[dialogues.c.code], set_={**values, "updated_at": func.now()}
    ).returning(text("(xmax = 0) AS created"))
    return bool((await session.execute(upsert)).scalar_one())


async def get_dialogue(conn: Executor, code: str) -> dict[str, Any] | None:
    return _row((await conn.execute(select(dialogues).where(dialogues.c.code == code))).first())


async def list_dialogues(conn: Executor) -> list[dict[str, Any]]:
    answered = (
        select(func.count())
        .where(
            submissions.c.dialogue_code == dialogues.c.code,
            submissions.c.kind == "dialogue",
            submissions.c.public,
        )
        .scalar_subquery()
    )
    query = select(dialogues, answered.label("answered")).order_by(
        dialogues.c.starts_at.desc(), dialogues.c.code
    )
    return _rows(await conn.execute(query))


async def upsert_document(session: AsyncSession, code: str, values: dict[str, Any]) -> bool:
    stmt = insert(feedback_documents).values(code=code, **values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[feedback_documents.c.code], set_={**values, "updated_at": func.now()}
    ).returning(text("(xmax = 0) AS created"))
    return bool((await session.execute(upsert)).scalar_one())


async def get_document(conn: Executor, code: str) -> dict[str, Any] | None:
    query = select(feedback_documents).where(feedback_documents.c.code == code)
    return _row((await conn.execute(query)).first())


async def list_documents(conn: Executor) -> list[dict[str, Any]]:
    query = select(feedback_documents).order_by(
        feedback_documents.c.deadline.desc(), feedback_documents.c.code
    )
    return _rows(await conn.execute(query))


async def feedback_counts(conn: Executor, document_code: str) -> dict[str | None, int]:
    """Feedback received per section (None: on the whole document); counts only."""
    query = (
        select(submissions.c.section_code, func.count())
        .where(
            submissions.c.kind == "feedback",
            submissions.c.document_code == document_code,
            submissions.c.state != "rejected",
        )
        .group_by(submissions.c.section_code)
    )
    return {r[0]: int(r[1]) for r in await conn.execute(query)}


# --- articles (read model of article.published) ---------------------------------------------


# What a row of ``upsert_articles`` holds, every key every time.
ARTICLE_FIELDS = ("article_id", "revision", "state", "slug", "url_path", "title")

# Each row unless a newer revision is stored already.
_UPSERT_ARTICLES = Upsert(
    articles,
    ARTICLE_FIELDS,
    conflict=["article_id"],
    set_=lambda new: {**from_proposed(new, ARTICLE_FIELDS[1:]), "updated_at": func.now()},
    where=lambda new: articles.c.revision <= new.revision,
)


async def upsert_articles(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store articles' public state (at most one row each, with every ``ARTICLE_FIELDS``),
    each unless a newer revision is already there: one statement run for all the rows."""
    await _UPSERT_ARTICLES.run(session, rows)


async def get_article(conn: Executor, article_id: str) -> dict[str, Any] | None:
    query = select(articles).where(articles.c.article_id == article_id)
    return _row((await conn.execute(query)).first())


# --- submissions ----------------------------------------------------------------------------


async def next_number(session: AsyncSession) -> int:
    """The next running number of submissions (the identity column's own sequence)."""
    query = select(func.nextval(func.pg_get_serial_sequence("submissions", "number")))
    return int((await session.execute(query)).scalar_one())


async def insert_submission(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(submissions.insert().values(**values))


async def by_idempotency(session: AsyncSession, digest: str) -> dict[str, Any] | None:
    query = select(submissions).where(submissions.c.idempotency_hash == digest)
    return _row((await session.execute(query)).first())


async def add_contact(
    session: AsyncSession, submission_id: str, email: str | None, phone: str | None
) -> None:
    await session.execute(
        contacts.insert().values(submission_id=submission_id, email=email, phone=phone)
    )


async def get_contact(conn: Executor, submission_id: str) -> dict[str, Any] | None:
    query = select(contacts).where(contacts.c.submission_id == submission_id)
    return _row((await conn.execute(query)).first())


async def add_token(session: AsyncSession, digest: str, submission_id: str) -> None:
    await session.execute(
        status_tokens.insert().values(token_hash=digest, submission_id=submission_id)
    )


async def submission_for_token(conn: Executor, digest: str) -> dict[str, Any] | None:
    query = (
        select(submissions)
        .join(status_tokens, status_tokens.c.submission_id == submissions.c.id)
        .where(status_tokens.c.token_hash == digest)
    )
    return _row((await conn.execute(query)).first())


async def get_submission(conn: Executor, submission_id: str) -> dict[str, Any] | None:
    query = select(submissions).where(submissions.c.id == submission_id)
    return _row((await conn.execute(query)).first())


async def lock_submission(session: AsyncSession, submission_id: str) -> dict[str, Any] | None:
    query = select(submissions).where(submissions.c.id == submission_id).with_for_update()
    return _row((await session.execute(query)).first())


async def update_submission(
    session: AsyncSession, submission_id: str, values: dict[str, Any]
) -> None:
    await session.execute(
        update(submissions)
        .where(submissions.c.id == submission_id)
        .values(**values, updated_at=func.now())
    )


async def add_step(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(submission_steps).values(**values).on_conflict_do_nothing())


async def steps_of(conn: Executor, submission_id: str) -> list[dict[str, Any]]:
    query = (
        select(submission_steps)
        .where(submission_steps.c.submission_id == submission_id)
        .order_by(submission_steps.c.revision)
    )
    return _rows(await conn.execute(query))


# --- public listings ------------------------------------------------------------------------

# The only columns a public listing of posts and answers may read.
PUBLIC_COLUMNS = (
    submissions.c.id,
    submissions.c.reference,
    submissions.c.kind,
    submissions.c.topic,
    submissions.c.agency,
    submissions.c.routed_agency,
    submissions.c.dialogue_code,
    submissions.c.forum_topic,
    submissions.c.thread_id,
    submissions.c.article_id,
    submissions.c.title,
    submissions.c.body,
    submissions.c.display_name,
    submissions.c.answer_html,
    submissions.c.answered_by,
    submissions.c.answered_at,
    submissions.c.submitted_at,
    submissions.c.published_at,
)


async def _page(conn: Executor, query: Any, *, page: int, size: int, order: Any) -> Page:
    total = int(
        (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    )
    rows = await conn.execute(query.order_by(*order).limit(size).offset((page - 1) * size))
    return Page(_rows(rows), total)


async def public_questions(
    conn: Executor, *, topic: str | None, agency: str | None, page: int, size: int
) -> Page:
    query = select(*PUBLIC_COLUMNS).where(submissions.c.kind == "qa", submissions.c.public)
    if topic:
        query = query.where(submissions.c.topic == topic)
    if agency:
        query = query.where(submissions.c.routed_agency == agency)
    order = (submissions.c.answered_at.desc(), submissions.c.id)
    return await _page(conn, query, page=page, size=size, order=order)


async def public_submission(conn: Executor, submission_id: str, kind: str) -> dict[str, Any] | None:
    query = select(*PUBLIC_COLUMNS).where(
        submissions.c.id == submission_id, submissions.c.kind == kind, submissions.c.public
    )
    return _row((await conn.execute(query)).first())


async def agency_answer_times(conn: Executor) -> list[dict[str, Any]]:
    """Per agency that answers: answered questions and hours to answer (median, p90, mean),
    and questions routed to it still waiting, with the oldest wait."""
    hours = func.extract("epoch", submissions.c.answered_at - submissions.c.submitted_at) / 3600.0
    answered = and_(submissions.c.public, submissions.c.answered_at.is_not(None))
    waiting = and_(
        submissions.c.state.in_(("routed", "answered")), submissions.c.answer_revision.is_(None)
    )
    query = (
        select(
            submissions.c.routed_agency.label("agency"),
            func.count().filter(answered).label("answered"),
            func.percentile_cont(0.5).within_group(hours).filter(answered).label("median_hours"),
            func.percentile_cont(0.9).within_group(hours).filter(answered).label("p90_hours"),
            func.avg(case((answered, hours))).label("mean_hours"),
            func.count().filter(waiting).label("waiting"),
            func.min(case((waiting, submissions.c.submitted_at))).label("oldest_waiting_since"),
        )
        .where(submissions.c.kind == "qa", submissions.c.routed_agency.is_not(None))
        .group_by(submissions.c.routed_agency)
        .order_by(submissions.c.routed_agency)
    )
    return _rows(await conn.execute(query))


async def dialogue_transcript(conn: Executor, dialogue_code: str) -> list[dict[str, Any]]:
    query = (
        select(*PUBLIC_COLUMNS)
        .where(
            submissions.c.kind == "dialogue",
            submissions.c.dialogue_code == dialogue_code,
            submissions.c.public,
        )
        .order_by(submissions.c.answered_at, submissions.c.id)
    )
    return _rows(await conn.execute(query))


async def dialogue_events_after(
    conn: Executor, dialogue_code: str, after_seq: int, limit: int = 200
) -> list[dict[str, Any]]:
    query = (
        select(dialogue_events)
        .where(dialogue_events.c.dialogue_code == dialogue_code, dialogue_events.c.seq > after_seq)
        .order_by(dialogue_events.c.seq)
        .limit(limit)
    )
    return _rows(await conn.execute(query))


async def dialogue_last_seq(conn: Executor, dialogue_code: str) -> int:
    query = select(func.coalesce(func.max(dialogue_events.c.seq), 0)).where(
        dialogue_events.c.dialogue_code == dialogue_code
    )
    return int((await conn.execute(query)).scalar_one())


async def add_dialogue_event(
    session: AsyncSession,
    dialogue_code: str,
    submission_id: str,
    event: str,
    payload: dict[str, Any],
) -> None:
    """Append to the live log and tell every instance's live readers, at commit."""
    await session.execute(
        dialogue_events.insert().values(
            dialogue_code=dialogue_code, submission_id=submission_id, event=event, payload=payload
        )
    )
    await session.execute(select(func.pg_notify(LIVE_CHANNEL, dialogue_code)))


async def forum_threads(conn: Executor, topic: str | None, *, page: int, size: int) -> Page:
    """Published threads of a topic (every topic: None), latest activity first."""
    replies = (
        select(
            submissions.c.thread_id.label("tid"),
            func.count().label("n"),
            func.max(submissions.c.published_at).label("last"),
        )
        .where(submissions.c.kind == "forum_reply", submissions.c.public)
        .group_by(submissions.c.thread_id)
        .subquery()
    )
    query = (
        select(
            *PUBLIC_COLUMNS,
            func.coalesce(replies.c.n, 0).label("replies"),
            func.coalesce(replies.c.last, submissions.c.published_at).label("last_activity_at"),
        )
        .outerjoin(replies, replies.c.tid == submissions.c.id)
        .where(submissions.c.kind == "forum_thread", submissions.c.public)
    )
    if topic is not None:
        query = query.where(submissions.c.forum_topic == topic)
    order = (text("last_activity_at DESC"), submissions.c.id)
    return await _page(conn, query, page=page, size=size, order=order)


async def thread_replies(conn: Executor, thread_id: str, *, page: int, size: int) -> Page:
    query = select(*PUBLIC_COLUMNS).where(
        submissions.c.kind == "forum_reply",
        submissions.c.thread_id == thread_id,
        submissions.c.public,
    )
    order = (submissions.c.published_at, submissions.c.id)
    return await _page(conn, query, page=page, size=size, order=order)


async def article_comments(conn: Executor, article_id: str, *, page: int, size: int) -> Page:
    query = select(*PUBLIC_COLUMNS).where(
        submissions.c.kind == "comment",
        submissions.c.article_id == article_id,
        submissions.c.public,
    )
    order = (submissions.c.published_at, submissions.c.id)
    return await _page(conn, query, page=page, size=size, order=order)


# --- reports --------------------------------------------------------------------------------


async def add_report(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Record a report; the post's report count after it, or None if this client already did."""
    stmt = insert(reports).values(**values).on_conflict_do_nothing().returning(reports.c.id)
    if (await session.execute(stmt)).first() is None:
        return None
    result = await session.execute(
        update(submissions)
        .where(submissions.c.id == values["submission_id"])
        .values(reports=submissions.c.reports + 1)
        .returning(submissions.c.reports)
    )
    return int(result.scalar_one())


async def now(conn: Executor) -> datetime:
    value: datetime = (await conn.execute(select(func.now()))).scalar_one()
    return value
