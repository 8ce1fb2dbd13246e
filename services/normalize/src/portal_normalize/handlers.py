"""Kafka handlers of the normalize service: thin, the logic is in ``domain``."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalized,
    ArticleNormalizedEvent,
)
from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_normalize import repository, similarity
from portal_normalize.db import outbox
from portal_normalize.domain import (
    MAX_EVENT_BYTES,
    NO_RULES,
    Normalized,
    SourceRules,
    finish,
    is_newer,
    prepare,
    retraction_data,
    upsert_data,
)
from portal_normalize.media import MediaService
from portal_normalize.settings import Settings
from portal_runtime.kafka import PermanentError
from portal_runtime.logs import get_logger

log = get_logger(__name__)

PRODUCER = "normalize"


class IngestedHandler:
    """article.ingested -> article.normalized, once per event and only for a newer revision.

    The expensive part (text, markup, images) runs before the transaction; the transaction
    claims the revision, links a near-duplicate and writes the event to the outbox together.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        media: MediaService | None,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.media = media
        self.settings = settings

    async def __call__(self, event: ArticleIngestedEvent, msg: KafkaMessage) -> None:
        data = event.data
        async with self.sessions() as session:
            known = await repository.known_revision(session, data.article_id)
            stored_rules = await repository.get_rules(session, data.source)
        if not is_newer(data.revision, known):
            log.info("stale_revision_ignored", article_id=data.article_id, revision=data.revision)
            return
        result: Normalized | None = None
        signature: tuple[int, ...] | None = None
        if data.action is ArticleAction.UPSERT:
            result = await self._normalize(data, stored_rules.rules if stored_rules else NO_RULES)
            text = similarity.fingerprint_text(result.article.title, result.article.body_text)
            signature = await asyncio.to_thread(similarity.signature, text)

        async with self.sessions.begin() as session:
            if not await outbox.first_time(session, event.event_id, ARTICLE_INGESTED.name):
                return
            normalized: ArticleNormalized
            if result is None:
                await repository.forget_fingerprint(session, data.article_id)
                normalized = retraction_data(data)
            else:
                twin = await repository.link_duplicate(
                    session, data.article_id, data.source, signature
                )
                normalized = upsert_data(data, result, twin.article_id if twin else None)
            out = ArticleNormalizedEvent(
                producer=PRODUCER, subject=data.article_id, data=normalized
            )
            size = len(encode(out))
            if size > MAX_EVENT_BYTES:
                # The broker would refuse it and the outbox relay would stall behind it.
                raise PermanentError(
                    f"normalized event of {size} bytes exceeds {MAX_EVENT_BYTES}", "size"
                )
            if not await repository.claim_revision(session, normalized, event.event_id):
                log.info(
                    "stale_revision_ignored", article_id=data.article_id, revision=data.revision
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
            duplicate_of=normalized.duplicate_of,
        )

    async def _normalize(self, data: ArticleIngested, rules: SourceRules) -> Normalized:
        if data.content is None:
            raise PermanentError("an upsert without content")
        # CPU work on up to 2 MB of HTML: keep the event loop (health, relay) responsive.
        draft = await asyncio.to_thread(
            prepare,
            data.content,
            rules,
            received_at=data.received_at,
            max_images=self.settings.image_max_per_article,
        )
        outcomes = None
        if self.media is not None:
            outcomes = await self.media.resolve([c.url for c in draft.images])
        return await asyncio.to_thread(
            finish, draft, outcomes, media_base_url=self.settings.media_base_url
        )
