"""Kafka handlers of the engagement service: thin, the rules are in ``domain``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaMessage

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.questions import QuestionAnsweredEvent
from portal_contracts.submissions import SubmissionModeratedEvent
from portal_engagement.usecases import Engagement
from portal_runtime.kafka import PermanentError

Handler = Callable[[Any, KafkaMessage], Awaitable[None]]


def answered_handler(engagement: Engagement) -> Handler:
    """question.answered: the public answer (Q&A page, dialogue transcript and live stream)."""

    async def handle(event: QuestionAnsweredEvent, msg: KafkaMessage) -> None:
        if event.subject != event.data.question_id:
            raise PermanentError("subject: is not the question id", "invalid")
        await engagement.on_answered(event)

    return handle


def moderated_handler(engagement: Engagement) -> Handler:
    """submission.moderated: a step on the submitter's status link; posts become public."""

    async def handle(event: SubmissionModeratedEvent, msg: KafkaMessage) -> None:
        if event.subject != event.data.submission_id:
            raise PermanentError("subject: is not the submission id", "invalid")
        await engagement.on_moderated(event)

    return handle


def article_handler(engagement: Engagement) -> Handler:
    """article.published: which articles take comments (only public ones)."""

    async def handle(event: ArticlePublishedEvent, msg: KafkaMessage) -> None:
        await engagement.on_article(event)

    return handle
