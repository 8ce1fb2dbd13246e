"""SQL of the desk's drafts, and what the agency's own view shows of each (the review state
and the editors' last reason)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal_moderation.db import decisions, drafts, review_items


async def get_draft(session: AsyncSession, draft_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(drafts).where(drafts.c.draft_id == draft_id))).first()
    return dict(row._mapping) if row else None


async def insert_draft(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(drafts.insert().values(**values))


async def update_draft(session: AsyncSession, draft_id: str, values: dict[str, Any]) -> None:
    await session.execute(
        drafts.update().where(drafts.c.draft_id == draft_id).values(**values, updated_at=func.now())
    )


async def mark_submitted(
    session: AsyncSession, draft_id: str, *, state: str, revision: int
) -> None:
    # The database's clock, as every save's: "changed since submitted" compares the two.
    await session.execute(
        drafts.update()
        .where(drafts.c.draft_id == draft_id)
        .values(
            state=state,
            submitted_revision=revision,
            submitted_at=func.now(),
            updated_at=func.now(),
            editor_comment=None,  # a new revision answers the editors' last word
            comment_by=None,
            comment_at=None,
        )
    )


async def set_comment(session: AsyncSession, draft_id: str, comment: str, by: str) -> None:
    await session.execute(
        drafts.update()
        .where(drafts.c.draft_id == draft_id)
        .values(editor_comment=comment, comment_by=by, comment_at=func.now())
    )


def _last_reason() -> Any:
    """The reason of the newest rejection of the item's current revision."""
    return (
        select(decisions.c.reason)
        .where(
            decisions.c.article_id == drafts.c.article_id,
            decisions.c.action == "rejected",
            decisions.c.revision == review_items.c.revision,
        )
        .order_by(decisions.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


async def list_drafts(
    session: AsyncSession, *, source: str | None, limit: int = 200
) -> list[dict[str, Any]]:
    """Drafts newest first (of one agency, or every agency), with the review item's state,
    revision and the editors' reason when it was rejected."""
    query = (
        select(
            drafts,
            review_items.c.state.label("review_state"),
            review_items.c.revision.label("review_revision"),
            _last_reason().label("reason"),
        )
        .select_from(
            drafts.outerjoin(review_items, and_(review_items.c.article_id == drafts.c.article_id))
        )
        .order_by(drafts.c.updated_at.desc())
        .limit(limit)
    )
    if source is not None:
        query = query.where(drafts.c.source == source)
    return [dict(r._mapping) for r in (await session.execute(query)).all()]


async def review_of(session: AsyncSession, article_id: str) -> dict[str, Any] | None:
    """The review item's state and revision, and the reason of its newest rejection."""
    row = (
        await session.execute(
            select(review_items.c.state, review_items.c.revision).where(
                review_items.c.article_id == article_id
            )
        )
    ).first()
    if row is None:
        return None
    reason = (
        await session.execute(
            select(decisions.c.reason)
            .where(
                decisions.c.article_id == article_id,
                decisions.c.action == "rejected",
                decisions.c.revision == row.revision,
            )
            .order_by(decisions.c.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return {"state": row.state, "revision": row.revision, "reason": reason}
