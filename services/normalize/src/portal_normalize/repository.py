"""Queries on the normalize service's tables."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from portal_contracts.articles import ArticleNormalized
from portal_normalize.db import articles


async def claim_revision(session: AsyncSession, data: ArticleNormalized, event_id: UUID) -> bool:
    """Record ``data`` as the article's newest revision; False if an equal or newer one is known.

    One statement, so two consumers racing on the same article cannot both win.
    """
    quality = data.quality.model_dump(mode="json") if data.quality else None
    values = insert(articles).values(
        article_id=data.article_id,
        source=data.source,
        external_id=data.external_id,
        revision=data.revision,
        action=data.action.value,
        event_id=event_id,
        quality_score=data.quality.score if data.quality else None,
        quality=quality,
    )
    new = values.excluded
    stmt = values.on_conflict_do_update(
        index_elements=[articles.c.article_id],
        set_={
            "revision": new.revision,
            "action": new.action,
            "event_id": new.event_id,
            "quality_score": new.quality_score,
            "quality": new.quality,
            "normalized_at": func.now(),
        },
        where=articles.c.revision < new.revision,
    ).returning(articles.c.article_id)
    return (await session.execute(stmt)).first() is not None


async def get_article(conn: AsyncConnection, article_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(articles).where(articles.c.article_id == article_id))).first()
    return dict(row._mapping) if row else None
