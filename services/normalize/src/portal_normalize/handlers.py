"""Kafka handlers of the normalize service: thin, the logic is in ``domain``."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleIngestedEvent, ArticleNormalizedEvent
from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_normalize import repository
from portal_normalize.db import outbox
from portal_normalize.domain import MAX_EVENT_BYTES, NormalizeRefused, normalized_data
from portal_runtime.kafka import PermanentError
from portal_runtime.logs import get_logger

log = get_logger(__name__)

PRODUCER = "normalize"


class IngestedHandler:
    """article.ingested -> article.normalized, once per event and only for a newer revision."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __call__(self, event: ArticleIngestedEvent, msg: KafkaMessage) -> None:
        data = event.data
        try:
            # CPU work on up to 2 MB of HTML: keep the event loop (health, relay) responsive.
            normalized = await asyncio.to_thread(normalized_data, data)
        except NormalizeRefused as exc:
            raise PermanentError(str(exc)) from exc
        out = ArticleNormalizedEvent(producer=PRODUCER, subject=data.article_id, data=normalized)
        size = len(encode(out))
        if size > MAX_EVENT_BYTES:
            # The broker would refuse it and the outbox relay would stall behind it.
            raise PermanentError(
                f"normalized event of {size} bytes exceeds {MAX_EVENT_BYTES}", "size"
            )
        async with self.sessions.begin() as session:
            if not await outbox.first_time(session, event.event_id, ARTICLE_INGESTED.name):
                return
            if not await repository.claim_revision(session, normalized, event.event_id):
                log.info(
                    "stale_revision_ignored",
                    article_id=data.article_id,
                    revision=data.revision,
                )
                return
            await outbox.add(session, ARTICLE_NORMALIZED.name, out)
        outbox.notify()
        log.info(
            "article_normalized",
            article_id=data.article_id,
            revision=data.revision,
            action=data.action.value,
            score=normalized.quality.score if normalized.quality else None,
        )
