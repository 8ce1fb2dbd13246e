"""Kafka consumers: thin adapters from events to the use cases."""

from __future__ import annotations

from portal_contracts.articles import ArticleReviewedEvent
from portal_contracts.topics import ARTICLE_REVIEWED
from portal_publishing.pagecache import PageCache
from portal_publishing.usecases import apply_reviews
from portal_runtime.batch import Message
from portal_runtime.consumer import Subscription
from portal_runtime.unit_of_work import UnitOfWork

GROUP = "publishing"


def reviewed_subscription(pages: PageCache) -> Subscription[ArticleReviewedEvent]:
    """article.reviewed -> the published store and article.published."""

    async def handle(batch: list[Message[ArticleReviewedEvent]], uow: UnitOfWork) -> None:
        if await apply_reviews(batch, uow):
            # A public change: the cached pages end with this commit (pagecache.py), and the
            # other instances hear of it from the one NOTIFY the batch's transaction sends.
            uow.around_commit(pages.writing())

    return Subscription(group=GROUP, topics=[ARTICLE_REVIEWED], handler=handle)
