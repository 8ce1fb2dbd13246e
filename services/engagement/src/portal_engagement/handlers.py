"""Kafka consumers of the engagement service: thin, the rules are in ``domain``."""

from __future__ import annotations

from typing import Any

from portal_contracts.topics import ARTICLE_PUBLISHED, QUESTION_ANSWERED, SUBMISSION_MODERATED
from portal_engagement.usecases import Engagement
from portal_runtime.consumer import Subscription

GROUP = "engagement"


def subscriptions(engagement: Engagement) -> list[Subscription[Any]]:
    return [
        # question.answered: the public answer (Q&A page, dialogue transcript, live stream).
        Subscription(group=GROUP, topics=[QUESTION_ANSWERED], handler=engagement.on_answered),
        # submission.moderated: a step on the submitter's status link; posts become public.
        Subscription(group=GROUP, topics=[SUBMISSION_MODERATED], handler=engagement.on_moderated),
        # article.published: which articles take comments (idempotent by revision: no inbox).
        Subscription(
            group=GROUP, topics=[ARTICLE_PUBLISHED], handler=engagement.on_articles, inbox=False
        ),
    ]
