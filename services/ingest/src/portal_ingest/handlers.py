"""Kafka consumers: partner topics (intake) and pipeline events (partner status and journey).
Thin: they translate messages into use-case calls and rejections into recorded errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import (
    ArticleNormalizedEvent,
    ArticlePublishedEvent,
    ArticleReviewedEvent,
    Channel,
    PublishedState,
)
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    ARTICLE_REVIEWED,
    PARTNER_DEAD_LETTERS,
    PARTNER_TOPIC_PATTERN,
    source_of_partner_topic,
)
from portal_ingest import domain
from portal_ingest import repository as repo
from portal_ingest.intake_usecases import PRODUCER, IntakeResult, Submission
from portal_ingest.journey import record_stages
from portal_ingest.settings import Settings
from portal_ingest.usecases import Refused, StatusChange, StatusTracker, StorageUnavailable
from portal_runtime.batch import Message, PermanentError, Record
from portal_runtime.consumer import Subscription
from portal_runtime.kafka import dead_letter_for
from portal_runtime.unit_of_work import Rejection, UnitOfWork

# The consumer group that follows the pipeline: partner status and journey.
FOLLOWING_GROUP = "ingest"
# The topics whose events change a status, each applied once: when its journey row is new (the
# journey table, one row per event id, is this consumer's inbox). article.ingested only adds a
# journey row.
STATUS_TOPICS = (ARTICLE_NORMALIZED, ARTICLE_REVIEWED, ARTICLE_PUBLISHED)


# -- following the pipeline: status and journey ---------------------------------------------------


def status_change(event: Envelope) -> StatusChange | None:
    """What a pipeline event means for the partner-visible status of its article."""
    if isinstance(event, ArticleNormalizedEvent):
        n = event.data
        return StatusChange(
            article_id=n.article_id,
            revision=n.revision,
            status=domain.status_after_normalized(n.action),
            reason=None,
            occurred_at=event.occurred_at,
        )
    if isinstance(event, ArticleReviewedEvent):
        r = event.data
        return StatusChange(
            article_id=r.article_id,
            revision=r.revision,
            status=domain.status_after_review(r.decision),
            reason=r.reason,
            occurred_at=r.reviewed_at,
        )
    if isinstance(event, ArticlePublishedEvent):
        p = event.data
        published = p.state is PublishedState.PUBLISHED
        return StatusChange(
            article_id=p.article_id,
            revision=p.revision,
            status=domain.status_after_published(p.state),
            reason=None,
            occurred_at=p.updated_at,
            public_path=p.url_path if published else None,
            touch_public_path=True,
        )
    return None


def following_subscription(tracker: StatusTracker) -> Subscription[Envelope]:
    """The four article topics -> each event's journey row, and each item's status (from
    article.normalized, .reviewed and .published), one batch at a time in one transaction.
    One consumer for both: each event is fetched and decoded once, not once per group. An
    event changes a status only the first time it is seen: when its journey row is new (every
    status event has one), so no inbox row is written beside it."""

    async def handle(batch: list[Message[Envelope]], uow: UnitOfWork) -> None:
        session = await uow.session()
        fresh = await record_stages(session, batch)
        changes: list[StatusChange] = []
        for m in batch:
            event_id = m.event.event_id
            if event_id in fresh:
                fresh.discard(event_id)  # a repeat within the batch counts once, at its first
                change = status_change(m.event)
                if change is not None:
                    changes.append(change)
        if changes:
            await tracker.apply(session, changes)

    return Subscription(
        group=FOLLOWING_GROUP,
        topics=[ARTICLE_INGESTED, *STATUS_TOPICS],
        handler=handle,
        inbox=False,  # the journey table is the inbox (above)
    )


# -- partner Kafka intake ---------------------------------------------------------------------


class BatchSubmitter(Protocol):
    """What the intake needs of usecases.Ingestor."""

    async def submit_batch(
        self, batch: Sequence[Submission], session: Callable[[], Awaitable[AsyncSession]]
    ) -> list[IntakeResult]: ...


@dataclass(frozen=True)
class PartnerMessage:
    """A partner topic's message: the agency (from the topic, never the payload) and the article."""

    source: str
    message: PartnerArticleMessage


def partner_message(record: Record, max_body_bytes: int) -> PartnerMessage:
    source = source_of_partner_topic(record.topic)
    if source is None:  # the subscription pattern and the registry disagree
        raise PermanentError(f"topic {record.topic} is not a partner topic", "routing")
    try:
        message = domain.parse_partner_message(record.value, max_body_bytes)
    except domain.InvalidPartnerMessage as exc:
        raise PermanentError(exc.reason, exc.error_type) from exc
    return PartnerMessage(source, message)


def partner_error(rejection: Rejection, group: str) -> tuple[repo.PartnerError, DeadLetterEvent]:
    """The row the partner sees (``GET /v1/errors``) and the dead letter of one refusal.

    The dead letter (read by operators) keeps the full reason; the partner's row says only
    "internal error" for a failure that is the portal's own."""
    record = rejection.record
    source = source_of_partner_topic(record.topic)
    dead_letter = dead_letter_for(
        record,
        group=group,
        reason=rejection.reason,
        error_type=rejection.error_type,
        producer=PRODUCER,
        source=source,
    )
    error = repo.PartnerError(
        source=source,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        external_id=domain.external_id_hint(record.value),
        revision=rejection.detail.get("revision"),
        error_type=rejection.error_type,
        reason=domain.partner_reason(rejection.error_type, rejection.reason),
        failed_at=dead_letter.data.failed_at,
    )
    return error, dead_letter


async def record_partner_errors(
    uow: UnitOfWork, session: AsyncSession, rejections: Sequence[Rejection]
) -> None:
    """Refused partner messages: one row for the partner and one dead letter, together, once
    per message (a redelivered message is already recorded); one statement for the batch."""
    refused = [(rejection, *partner_error(rejection, uow.group)) for rejection in rejections]
    recorded = await repo.insert_partner_errors(session, [error for _, error, _ in refused])
    for rejection, error, dead_letter in refused:
        at = (error.topic, error.partition, error.offset)
        if at in recorded:
            recorded.discard(at)  # a message refused twice in one transaction: one dead letter
            uow.emit(PARTNER_DEAD_LETTERS, dead_letter, cause=rejection.message)


def partner_subscription(
    settings: Settings, ingestor: BatchSubmitter
) -> Subscription[PartnerMessage]:
    """``partner.<source>.articles``: each agency's own topic, found by pattern (a topic made
    after start is picked up within ``PARTNER_METADATA_MAX_AGE_MS``)."""

    async def handle(batch: list[Message[PartnerMessage]], uow: UnitOfWork) -> None:
        # The batch as one, in offset order: an agency's revisions of one article are decided
        # in the order sent, each against the ones before it.
        submissions = [
            Submission(m.event.source, m.event.message, Channel.KAFKA, m.record.value or b"")
            for m in batch
        ]
        try:
            results = await ingestor.submit_batch(submissions, uow.session)
        except StorageUnavailable as exc:
            # The raw archive is away: keep the batch (no commit) and try again.
            raise ConnectionError(str(exc)) from exc
        for message, result in zip(batch, results, strict=True):
            if isinstance(result, Refused):
                revision = message.event.message.revision
                uow.reject(message, result.reason, result.kind.value, revision=revision)

    def decode(record: Record) -> PartnerMessage:
        return partner_message(record, settings.max_body_bytes)

    return Subscription(
        group=settings.partner_consumer_group,
        pattern=PARTNER_TOPIC_PATTERN.pattern,
        decode=decode,
        handler=handle,
        inbox=False,  # a repeat with unchanged content changes nothing (ingest's own rule)
        dead_letters=record_partner_errors,
        metadata_max_age_ms=settings.partner_metadata_max_age_ms,
    )
