"""Kafka consumers of the moderation service: thin, the rules are in ``domain``."""

from __future__ import annotations

from typing import Any

from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED, topic
from portal_moderation import pipeline_repository as pipeline_repo
from portal_moderation.deadletters import DEAD_LETTER_TOPICS, record_of
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_moderation.submissions_handlers import submission_handlers
from portal_moderation.usecases import ReviewDesk
from portal_runtime.batch import Message, Record
from portal_runtime.consumer import Handler, Subscription, by_topic
from portal_runtime.unit_of_work import UnitOfWork

GROUP = "moderation"
DEAD_LETTERS_GROUP = "moderation-deadletters"


def moderation_subscription(desk: ReviewDesk, submissions: SubmissionsDesk) -> Subscription[Any]:
    """Everything the ``moderation`` group consumes, in one consumer: one poll, one
    transaction and one offset commit per batch over its topics, rather than one consumer
    (with its own fetches, heartbeats and commits) per topic.

    article.normalized -> review items (trusted sources and retractions emit at once);
    article.ingested -> the article as the partner sent it, shown beside the repaired one;
    the public submissions -> the submissions desk's queues.
    """
    handlers: dict[str, Handler[Any]] = {
        ARTICLE_NORMALIZED.name: desk.receive,
        ARTICLE_INGESTED.name: desk.keep_originals,
        **submission_handlers(submissions),
    }
    return Subscription(
        group=GROUP, topics=[topic(name) for name in handlers], handler=by_topic(handlers)
    )


def dead_letter_subscription() -> Subscription[dict[str, object]]:
    """The pipeline's dead letters, recorded for per-source health on the dashboard.

    A dead letter has nowhere further to go: an unreadable record is stored as such, a
    database outage is retried until it passes, and only a bug is logged and skipped.
    """

    def row(record: Record) -> dict[str, object]:
        return record_of(
            record.topic, record.partition, record.offset, record.value, record.timestamp_ms
        )

    async def save(batch: list[Message[dict[str, object]]], uow: UnitOfWork) -> None:
        await pipeline_repo.save_dead_letters(await uow.session(), [m.event for m in batch])

    return Subscription(
        group=DEAD_LETTERS_GROUP,
        topics=[topic(name) for name in DEAD_LETTER_TOPICS],
        decode=row,
        handler=save,
        inbox=False,
        dead_letter_poison=False,
    )
