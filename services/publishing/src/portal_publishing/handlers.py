"""Kafka handlers: thin adapters from events to the use cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from faststream.kafka import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleReviewedEvent
from portal_publishing.domain import InvalidReview
from portal_publishing.pagecache import PageCache
from portal_publishing.usecases import apply_review
from portal_runtime.kafka import PermanentError
from portal_runtime.outbox import Outbox

Handler = Callable[[ArticleReviewedEvent, KafkaMessage], Awaitable[None]]


def on_article_reviewed(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, pages: PageCache
) -> Handler:
    async def handle(event: ArticleReviewedEvent, msg: KafkaMessage) -> None:
        try:
            async with sessions() as session:
                decision = await apply_review(session, outbox, event)
                if decision is not None and decision.emits:
                    # A public change: the cached pages end with this commit (pagecache.py).
                    with pages.writing():
                        await session.commit()
                else:
                    await session.commit()
        except InvalidReview as exc:
            raise PermanentError(str(exc), "invalid_review") from exc
        if decision is not None and decision.emits:
            outbox.notify()

    return handle
