"""Kafka handlers of the moderation service: thin, the rules are in ``domain``."""

from __future__ import annotations

from faststream.kafka import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleNormalizedEvent
from portal_contracts.envelope import Envelope
from portal_contracts.topics import QUESTION_SUBMITTED
from portal_moderation.db import outbox
from portal_moderation.services import ReviewDesk


class NormalizedHandler:
    """article.normalized -> a review item; trusted sources and retractions emit at once."""

    def __init__(self, desk: ReviewDesk) -> None:
        self.desk = desk

    async def __call__(self, event: ArticleNormalizedEvent, msg: KafkaMessage) -> None:
        await self.desk.receive(event)


class QuestionsHandler:
    """question.submitted: recorded only until the questions desk lands (a later issue)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __call__(self, event: Envelope, msg: KafkaMessage) -> None:
        async with self.sessions.begin() as session:
            await outbox.first_time(session, event.event_id, QUESTION_SUBMITTED.name)
