"""Kafka handlers: partner topics (intake) and pipeline events (partner status). Thin: they
translate messages into use-case calls and decide between retry and dead letter.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.trace import TracerProvider

from portal_contracts.articles import (
    ArticleNormalizedEvent,
    ArticlePublishedEvent,
    ArticleReviewedEvent,
    Channel,
    PublishedState,
)
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import (
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    ARTICLE_REVIEWED,
    PARTNER_TOPIC_PATTERN,
    source_of_partner_topic,
)
from portal_ingest import domain
from portal_ingest.settings import Settings
from portal_ingest.usecases import (
    PRODUCER,
    PartnerError,
    Receipt,
    Refused,
    StatusTracker,
    StorageUnavailable,
)
from portal_runtime.kafka import dead_letter_for, is_transient, subscribe_events
from portal_runtime.kafka_security import broker_security
from portal_runtime.logs import get_logger

log = get_logger(__name__)

STATUS_GROUP = "ingest"


# -- pipeline status --------------------------------------------------------------------------


def register_status_handlers(broker: KafkaBroker, tracker: StatusTracker) -> None:
    async def on_normalized(event: ArticleNormalizedEvent, msg: KafkaMessage) -> None:
        d = event.data
        await tracker.apply(
            event_id=event.event_id,
            topic=ARTICLE_NORMALIZED.name,
            article_id=d.article_id,
            revision=d.revision,
            status=domain.status_after_normalized(d.action),
            reason=None,
            occurred_at=event.occurred_at,
        )

    async def on_reviewed(event: ArticleReviewedEvent, msg: KafkaMessage) -> None:
        d = event.data
        await tracker.apply(
            event_id=event.event_id,
            topic=ARTICLE_REVIEWED.name,
            article_id=d.article_id,
            revision=d.revision,
            status=domain.status_after_review(d.decision),
            reason=d.reason,
            occurred_at=d.reviewed_at,
        )

    async def on_published(event: ArticlePublishedEvent, msg: KafkaMessage) -> None:
        d = event.data
        published = d.state is PublishedState.PUBLISHED
        await tracker.apply(
            event_id=event.event_id,
            topic=ARTICLE_PUBLISHED.name,
            article_id=d.article_id,
            revision=d.revision,
            status=domain.status_after_published(d.state),
            reason=None,
            occurred_at=d.updated_at,
            public_path=d.url_path if published else None,
            touch_public_path=True,
        )

    for spec, model, handler in (
        (ARTICLE_NORMALIZED, ArticleNormalizedEvent, on_normalized),
        (ARTICLE_REVIEWED, ArticleReviewedEvent, on_reviewed),
        (ARTICLE_PUBLISHED, ArticlePublishedEvent, on_published),
    ):
        subscribe_events(
            broker,
            spec,
            group=STATUS_GROUP,
            producer=PRODUCER,
            model=model,
            handler=handler,  # type: ignore[arg-type]
        )


# -- partner Kafka intake ---------------------------------------------------------------------


class Submitter(Protocol):
    """What the intake needs of usecases.Ingestor."""

    async def submit(
        self, source: str, message: PartnerArticleMessage, channel: Channel, raw: bytes
    ) -> Receipt: ...


class ErrorRecorder(Protocol):
    """What the intake needs of usecases.PartnerErrors."""

    async def record(self, error: PartnerError, dead_letter: DeadLetterEvent) -> None: ...


def make_partner_broker(settings: Settings, tracer_provider: TracerProvider | None) -> KafkaBroker:
    """A consumer-only broker for partner topics, with a short metadata refresh so that a topic
    provisioned after start is subscribed within seconds (the pattern is re-evaluated then)."""
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=tracer_provider))
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id=f"{settings.service_name}-partners",
        metadata_max_age_ms=settings.partner_metadata_max_age_ms,
        middlewares=middlewares,
        logger=None,
        graceful_timeout=15.0,
    )


async def _raw_body(msg: Any) -> Any:
    return msg.body  # decoding is ours: bad bytes become a recorded error, not a crash


def register_partner_intake(
    broker: KafkaBroker,
    settings: Settings,
    ingestor: Submitter,
    errors: ErrorRecorder,
    *,
    max_attempts: int = 5,
    retry_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> None:
    group = settings.partner_consumer_group

    async def refuse(
        msg: KafkaMessage,
        source: str | None,
        reason: str,
        error_type: str,
        revision: int | None = None,
    ) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        dead_letter = dead_letter_for(
            msg,
            group=group,
            reason=reason,
            error_type=error_type,
            producer=PRODUCER,
            source=source,
        )
        await errors.record(
            PartnerError(
                source=source,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                external_id=domain.external_id_hint(record.value),
                revision=revision,
                error_type=error_type,
                reason=reason,
            ),
            dead_letter,
        )

    async def process(msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        source = source_of_partner_topic(record.topic)
        if source is None:  # the subscription pattern and the registry disagree
            await refuse(msg, None, f"topic {record.topic} is not a partner topic", "routing")
            return
        try:
            message = domain.parse_partner_message(record.value, settings.max_body_bytes)
        except domain.InvalidPartnerMessage as exc:
            await refuse(msg, source, exc.reason, exc.error_type)
            return
        try:
            await ingestor.submit(source, message, Channel.KAFKA, record.value or b"")
        except Refused as exc:
            await refuse(msg, source, exc.reason, exc.kind.value, message.revision)

    @broker.subscriber(
        pattern=PARTNER_TOPIC_PATTERN.pattern,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,  # commit only after process() returned
        decoder=_raw_body,
        max_poll_records=settings.kafka_max_poll_records,
        title="ingest:partner.<source>.articles",
        description="Articles partner agencies produce on their own topic (SASL_SSL, SCRAM).",
    )
    async def on_partner_message(body: Any, msg: KafkaMessage) -> None:
        attempts = 0
        while True:
            try:
                await process(msg)
                return
            except Exception as exc:
                attempts += 1
                delay = min(max_backoff_s, retry_backoff_s * 2 ** min(attempts - 1, 10))
                if is_transient(exc) or isinstance(exc, StorageUnavailable):
                    # A dependency is down: keep the message (no commit) and try again.
                    log.warning(
                        "partner_intake_retry", error=repr(exc), attempt=attempts, delay_s=delay
                    )
                elif attempts >= max_attempts:
                    # A bug, not the partner's fault: still recorded and dead-lettered.
                    log.exception("partner_intake_failed", attempts=attempts)
                    record = msg.raw_message
                    assert not isinstance(record, tuple)
                    try:
                        await refuse(
                            msg,
                            source_of_partner_topic(record.topic),
                            f"failed {attempts} times: {type(exc).__name__}: {exc}",
                            "processing",
                        )
                        return
                    except Exception:
                        log.exception("partner_error_record_failed")
                else:
                    log.exception("partner_intake_error", attempt=attempts)
                await asyncio.sleep(delay)


async def run_broker(broker: KafkaBroker, name: str, retry_s: float = 2.0) -> None:
    """Run a broker as a background task: start (retrying while Kafka is away), then wait."""
    while True:
        try:
            await broker.start()
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("broker_start_failed", broker=name, error=repr(exc), retry_in_s=retry_s)
            try:
                await broker.stop()
            except Exception:
                log.debug("broker_stop_after_failed_start", broker=name, exc_info=True)
            await asyncio.sleep(retry_s)
    try:
        await asyncio.Event().wait()
    finally:
        await broker.stop()
