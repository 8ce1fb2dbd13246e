"""Kafka handlers of the moderation service: thin, the rules are in ``domain``."""

from __future__ import annotations

import asyncio
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleIngestedEvent, ArticleNormalizedEvent
from portal_moderation import repository as repo
from portal_moderation.deadletters import DEAD_LETTER_TOPICS, record_of
from portal_moderation.usecases import ReviewDesk
from portal_runtime.kafka import is_transient
from portal_runtime.logs import get_logger

log = get_logger(__name__)


class NormalizedHandler:
    """article.normalized -> a review item; trusted sources and retractions emit at once."""

    def __init__(self, desk: ReviewDesk) -> None:
        self.desk = desk

    async def __call__(self, event: ArticleNormalizedEvent, msg: KafkaMessage) -> None:
        await self.desk.receive(event)


class OriginalsHandler:
    """article.ingested -> the article as the partner sent it, shown beside the repaired one."""

    def __init__(self, desk: ReviewDesk) -> None:
        self.desk = desk

    async def __call__(self, event: ArticleIngestedEvent, msg: KafkaMessage) -> None:
        await self.desk.keep_original(event)


async def _raw(msg: Any) -> Any:
    return msg.body


def subscribe_dead_letters(
    broker: KafkaBroker,
    sessions: async_sessionmaker[AsyncSession],
    *,
    group: str = "moderation-deadletters",
    max_attempts: int = 5,
) -> None:
    """Record the pipeline's dead letters (per-source errors on the dashboard).

    A dead letter has nowhere further to go, so this consumer never dead-letters: an unreadable
    record is stored as such, a database outage is retried until it passes, and only a bug
    (a non-transient error five times over) is logged and skipped.
    """

    @broker.subscriber(
        *DEAD_LETTER_TOPICS,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,
        decoder=_raw,
        max_poll_records=100,
        title="moderation:dead-letters",
    )
    async def on_dead_letter(body: Any, msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        row = record_of(
            record.topic,
            record.partition,
            record.offset,
            record.value if isinstance(record.value, bytes) else None,
            record.timestamp,
        )
        failures = 0
        while True:
            try:
                async with sessions.begin() as session:
                    await repo.save_dead_letter(session, row)
                return
            except Exception as exc:
                failures += 1
                if not is_transient(exc) and failures >= max_attempts:
                    log.exception(
                        "dead_letter_not_recorded", topic=record.topic, offset=record.offset
                    )
                    return
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
