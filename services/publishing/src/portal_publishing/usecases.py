"""Use cases: apply review decisions to the published store and queue the resulting events."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

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
    InvalidReview,
    Outcome,
    Stored,
    decide,
    fallback_slug,
    fingerprint,
    later,
    make_slug,
    url_path_for,
)
from portal_runtime.batch import Message, by_key
from portal_runtime.logs import get_logger
from portal_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)

PRODUCER = "publishing"


class _Changes:
    """What one batch does to the store: each article's row as it stands after its earlier
    reviews in the batch, the lists it touched, and the slugs it gave out."""

    def __init__(self, rows: dict[str, SimpleNamespace]) -> None:
        self.rows = rows
        self.writes: dict[str, dict[str, Any]] = {}
        self.scopes: set[str] = set()
        self.slugs: dict[str, str] = {}  # slug -> article id, given out in this batch
        self.held: dict[str, str] = {}  # slug -> article id, in the store before the batch

    def write(self, article_id: str, values: dict[str, Any]) -> None:
        self.writes.setdefault(article_id, {"article_id": article_id}).update(values)
        row = self.rows.get(article_id)
        if row is None:
            row = self.rows[article_id] = SimpleNamespace(**_EMPTY_ROW)
        vars(row).update(values)


# The columns the rules read, for an article the store does not have yet.
_EMPTY_ROW: dict[str, Any] = {
    "revision": None,
    "state": None,
    "fingerprint": None,
    "slug": None,
    "source": None,
    "section": None,
    "published_at": None,
    "updated_at": None,
    "retracted_at": None,
    "external_id": None,
}


async def apply_reviews(batch: list[Message[ArticleReviewedEvent]], uow: UnitOfWork) -> bool:
    """Apply a batch of article.reviewed events in the unit of work's transaction.

    The batch's articles are locked in key order; each article's reviews are applied in offset
    order, each seeing the ones before it; the store is written once per article, the changed
    lists touched once per batch. A decision that can never be applied is rejected (dead
    letter). Returns whether the public store changed.
    """
    session = await uow.session()
    groups = by_key(batch, lambda e: e.data.article_id)
    stored_rows = await repo.lock_articles(session, list(groups))
    changes = _Changes({k: SimpleNamespace(**r._mapping) for k, r in stored_rows.items()})
    changes.held = await repo.slugs_held(session, _wanted_slugs(batch, changes.rows))
    public = False
    for article_id, messages in groups.items():
        for message in messages:
            event = message.event
            review = event.data
            row = changes.rows.get(article_id)
            stored = (
                Stored(
                    revision=row.revision,
                    state=PublishedState(row.state),
                    fingerprint=row.fingerprint,
                )
                if row is not None and row.revision is not None
                else None
            )
            fp = fingerprint(review.source, review.article) if review.article is not None else None
            try:
                decision = decide(stored, review, fp)
            except InvalidReview as exc:
                uow.reject(message, str(exc), "invalid_review")
                continue
            if decision.outcome == Outcome.IGNORE:
                continue
            if decision.outcome == Outcome.TOMBSTONE:
                _remember_retraction(changes, event, row if stored is not None else None)
                continue
            if decision.outcome == Outcome.RETRACT:
                assert row is not None
                published = _retract(changes, event, row)
            else:
                assert review.article is not None and fp is not None
                published = _publish(
                    changes, event, row if stored is not None else None, review.article, fp
                )
            public = True
            uow.emit(
                ARTICLE_PUBLISHED.name,
                ArticlePublishedEvent(producer=PRODUCER, subject=review.article_id, data=published),
                cause=message,
            )
    await repo.upsert_articles(session, list(changes.writes.values()))
    await repo.touch(session, changes.scopes)
    return public


def _remember_retraction(
    changes: _Changes, event: ArticleReviewedEvent, row: SimpleNamespace | None
) -> None:
    """Nothing public changes; keep the newest revision so older decisions stay ignored."""
    review = event.data
    changes.write(
        review.article_id,
        {
            "source": review.source,
            "external_id": review.external_id,
            "revision": review.revision,
            "state": PublishedState.RETRACTED.value,
            "updated_at": review.reviewed_at if row is None else row.updated_at,
            "retracted_at": review.reviewed_at if row is None else row.retracted_at,
            "last_event_id": event.event_id,
        },
    )


def _retract(
    changes: _Changes, event: ArticleReviewedEvent, row: SimpleNamespace
) -> ArticlePublished:
    review = event.data
    updated_at = later(row.updated_at, review.reviewed_at)
    source, section, slug, published_at = row.source, row.section, row.slug, row.published_at
    changes.write(
        review.article_id,
        {
            "source": source,
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
    changes.scopes.update(_scopes(source, section))
    return ArticlePublished(
        article_id=review.article_id,
        source=source,
        revision=review.revision,
        state=PublishedState.RETRACTED,
        slug=slug,
        url_path=url_path_for(slug),
        published_at=published_at,
        updated_at=updated_at,
        article=None,
    )


def _publish(
    changes: _Changes,
    event: ArticleReviewedEvent,
    row: SimpleNamespace | None,
    article: NormalizedArticle,
    fp: str,
) -> ArticlePublished:
    review = event.data
    # Slug and first publication time are kept for good (also across a republication).
    if row is not None and row.slug:
        slug = row.slug
    else:
        slug = _new_slug(changes, review.article_id, article)
    published_at = (row.published_at if row is not None else None) or review.reviewed_at
    updated_at = review.reviewed_at if row is None else later(row.updated_at, review.reviewed_at)
    # Both the old and the new section/sub-site lists change when an article moves.
    changes.scopes.update(_scopes(review.source, article.section))
    if row is not None:
        changes.scopes.update(_scopes(row.source, row.section))
    changes.write(
        review.article_id,
        {
            "source": review.source,
            "external_id": review.external_id,
            "revision": review.revision,
            "state": PublishedState.PUBLISHED.value,
            "slug": slug,
            "section": article.section,
            "title": article.title,
            "summary": article.summary or None,
            "author": article.author,
            "lead_image": article.lead_image,
            "source_published_at": article.published_at,
            "article": article,
            "fingerprint": fp,
            "published_at": published_at,
            "updated_at": updated_at,
            "retracted_at": None,
            "last_event_id": event.event_id,
        },
    )
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


def _wanted_slugs(
    batch: list[Message[ArticleReviewedEvent]], rows: dict[str, SimpleNamespace]
) -> set[str]:
    """The short slugs the batch may give out: those of its articles that have none yet."""
    wanted: set[str] = set()
    for message in batch:
        review = message.event.data
        row = rows.get(review.article_id)
        if review.article is not None and (row is None or not row.slug):
            wanted.add(make_slug(review.article.title, review.article_id))
    return wanted


def _new_slug(changes: _Changes, article_id: str, article: NormalizedArticle) -> str:
    """The short slug unless another article holds it (in the store, or given out earlier in
    the batch); then the long one. The store's unique constraint has the last word."""
    slug = make_slug(article.title, article_id)
    holder = changes.slugs.get(slug) or changes.held.get(slug)
    if holder is not None and holder != article_id:
        slug = fallback_slug(article.title, article_id)
    changes.slugs[slug] = article_id
    return slug
