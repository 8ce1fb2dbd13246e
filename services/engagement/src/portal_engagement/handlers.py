"""Kafka consumers of the engagement service: thin, the rules are in ``domain``."""

from __future__ import annotations

from typing import Any

from portal_contracts.topics import ARTICLE_PUBLISHED, QUESTION_ANSWERED, SUBMISSION_MODERATED
from portal_engagement.usecases import Engagement
from portal_runtime.consumer import Handler, Subscription, by_topic

GROUP = "engagement"


def subscriptions(engagement: Engagement) -> list[Subscription[Any]]:
    """Everything the ``engagement`` group consumes, in one consumer (one fetch, heartbeat
    and offset commit for its topics, one transaction per batch)."""
    handlers: dict[str, Handler[Any]] = {
        # question.answered: the public answer (Q&A page, dialogue transcript, live stream).
        QUESTION_ANSWERED.name: engagement.on_answered,
        # submission.moderated: a step on the submitter's status link; posts become public.
        SUBMISSION_MODERATED.name: engagement.on_moderated,
        # article.published: which articles take comments (idempotent by revision: no inbox).
        ARTICLE_PUBLISHED.name: engagement.on_articles,
    }
    return [
        Subscription(
            group=GROUP,
            topics=[QUESTION_ANSWERED, SUBMISSION_MODERATED, ARTICLE_PUBLISHED],
            handler=by_topic(handlers),
            inbox={QUESTION_ANSWERED.name, SUBMISSION_MODERATED.name},
        )
    ]
