"""Use cases: apply a review decision to the published store and queue the resulting event."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    ArticleReviewedEvent,
    NormalizedArticle,
    PublishedState,
)
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_publishing import repository as repo
from portal_publishing.domain import (
    Decision,
    Outcome,
    Stored,
    decide,
    fallback_slug,
    fingerprint,
    later,
    make_slug,
    url_path_for,
)
from portal_runtime.logs import get_logger
from portal_runtime.outbox import Outbox

log = get_logger(__name__)

PRODUCER = "publishing"


async def apply_review(
    session: AsyncSession, outbox: Outbox, event: ArticleReviewedEvent
) -> Decision | None:
    """Apply one article.reviewed event in the caller's transaction.

    Returns None for an event already processed, else the decision taken. Raises
    ``domain.InvalidReview`` for a decision that can never be applied.
    """
    if not await outbox.first_time(session, event.event_id, event.type):
        return None
    review = event.data
    row = await repo.lock_article(session, review.article_id)
    stored = (
        Stored(revision=row.revision, state=PublishedState(row.state), fingerprint=row.fingerprint)
        if row is not None
        else None
    )
    fp = fingerprint(review.source, review.article) if review.article is not None else None
    decision = decide(stored, review, fp)
    log.info(
        "review_applied",
        article_id=review.article_id,
        revision=review.revision,
        decision=review.decision.value,
        outcome=decision.outcome.value,
        reason=decision.reason,
    )

    if decision.outcome == Outcome.IGNORE:
        return decision
    if decision.outcome == Outcome.TOMBSTONE:
        await _remember_retraction(session, event, row)
        return decision
    if decision.outcome == Outcome.RETRACT:
        assert row is not None
        published = await _retract(session, event, row)
    else:
        assert review.article is not None and fp is not None
        published = await _publish(session, event, row, review.article, fp)
    await outbox.add(
        session,
        ARTICLE_PUBLISHED.name,
        ArticlePublishedEvent(producer=PRODUCER, subject=review.article_id, data=published),
    )
    return decision


async def _remember_retraction(
    session: AsyncSession, event: ArticleReviewedEvent, row: repo.AnyRow | None
) -> None:
    """Nothing public changes; keep the newest revision so older decisions stay ignored."""
    review = event.data
    await repo.upsert_article(
        session,
        {
            "article_id": review.article_id,
            "source": review.source,
            "external_id": review.external_id,
            "revision": review.revision,
            "state": PublishedState.RETRACTED.value,
            "updated_at": review.reviewed_at if row is None else row.updated_at,
            "retracted_at": review.reviewed_at if row is None else row.retracted_at,
            "last_event_id": event.event_id,
        },
    )


async def _retract(
    session: AsyncSession, event: ArticleReviewedEvent, row: repo.AnyRow
) -> ArticlePublished:
    review = event.data
    updated_at = later(row.updated_at, review.reviewed_at)
    await repo.upsert_article(
        session,
        {
            "article_id": review.article_id,
            "source": row.source,
            "external_id": row.external_id,
            "revision": review.revision,
            "state": PublishedState.RETRACTED.value,
            # The retracted text leaves the store; slug and title stay for the 410 answer.
            "summary": None,
            "author": None,
            "lead_image": None,
            "article": None,
            "fingerprint": None,
            "updated_at": updated_at,
            "retracted_at": review.reviewed_at,
            "last_event_id": event.event_id,
        },
    )
    await repo.touch(session, _scopes(row.source, row.section))
    return ArticlePublished(
        article_id=review.article_id,
        source=row.source,
        revision=review.revision,
        state=PublishedState.RETRACTED,
        slug=row.slug,
        url_path=url_path_for(row.slug),
        published_at=row.published_at,
        updated_at=updated_at,
        article=None,
    )


async def _publish(
    session: AsyncSession,
    event: ArticleReviewedEvent,
    row: repo.AnyRow | None,
    article: NormalizedArticle,
    fp: str,
) -> ArticlePublished:
    review = event.data
    # Slug and first publication time are kept for good (also across a republication).
    if row is not None and row.slug:
        slug = row.slug
    else:
        slug = await _new_slug(session, review.article_id, article)
    published_at = (row.published_at if row is not None else None) or review.reviewed_at
    updated_at = review.reviewed_at if row is None else later(row.updated_at, review.reviewed_at)
    await repo.upsert_article(
        session,
        {
            "article_id": review.article_id,
            "source": review.source,
            "external_id": review.external_id,
            "revision": review.revision,
            "state": PublishedState.PUBLISHED.value,
            "slug": slug,
            "section": article.section,
            "title": article.title,
            "summary": article.summary or None,
            "author": article.author,
            "lead_image": (
                article.lead_image.model_dump(mode="json") if article.lead_image else None
            ),
            "source_published_at": article.published_at,
            "article": article.model_dump(mode="json"),
            "fingerprint": fp,
            "published_at": published_at,
            "updated_at": updated_at,
            "retracted_at": None,
            "last_event_id": event.event_id,
        },
    )
    # Both the old and the new section/sub-site lists change when an article moves.
    scopes = _scopes(review.source, article.section)
    if row is not None:
        scopes += _scopes(row.source, row.section)
    await repo.touch(session, scopes)
    return ArticlePublished(
        article_id=review.article_id,
        source=review.source,
        revision=review.revision,
        state=PublishedState.PUBLISHED,
        slug=slug,
        url_path=url_path_for(slug),
        published_at=published_at,
        updated_at=updated_at,
        article=article,
    )


def _scopes(source: str, section: str | None) -> list[str]:
    scopes = [repo.ARTICLES_SCOPE, repo.subsite_scope(source)]
    if section:
        scopes.append(repo.section_scope(section))
    return scopes


async def _new_slug(session: AsyncSession, article_id: str, article: NormalizedArticle) -> str:
    slug = make_slug(article.title, article_id)
    if await repo.slug_taken(session, slug, article_id):
        slug = fallback_slug(article.title, article_id)
    return slug
