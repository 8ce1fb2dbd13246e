"""The partner intake handler's decisions (retry, refuse, accept) with FastStream's in-memory
broker; the real broker, database and S3 are covered by test_partner_kafka_stack.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from portal_contracts.articles import ArticleAction, Channel
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.partner import PartnerArticleMessage
from portal_ingest.domain import Status
from portal_ingest.handlers import register_partner_intake
from portal_ingest.settings import Settings
from portal_ingest.usecases import PartnerError, Receipt, RefusalKind, Refused, StorageUnavailable

TOPIC = "partner.tp-ha-noi.articles"
VALID = json.dumps({"external_id": "hn-1", "content": {"title": "Tin"}}).encode()


class Ingestor:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.accepted: list[tuple[str, str, Channel, bytes]] = []

    async def submit(
        self, source: str, message: PartnerArticleMessage, channel: Channel, raw: bytes
    ) -> Receipt:
        if self.failures:
            raise self.failures.pop(0)
        self.accepted.append((source, message.external_id, channel, raw))
        return Receipt(
            article_id="a",
            source=source,
            external_id=message.external_id,
            revision=1,
            action=ArticleAction.UPSERT,
            status=Status.RECEIVED,
            duplicate=False,
            received_at=datetime.now(UTC),
        )


class Errors:
    def __init__(self) -> None:
        self.recorded: list[tuple[PartnerError, DeadLetterEvent]] = []

    async def record(self, error: PartnerError, dead_letter: DeadLetterEvent) -> None:
        self.recorded.append((error, dead_letter))


async def _run(ingestor: Ingestor, value: bytes, topic: str = TOPIC) -> Errors:
    broker = KafkaBroker()
    errors = Errors()
    register_partner_intake(
        broker, Settings(), ingestor, errors, retry_backoff_s=0.001, max_backoff_s=0.001
    )
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic=topic)
    return errors


async def test_the_source_comes_from_the_topic() -> None:
    ingestor = Ingestor()
    errors = await _run(ingestor, VALID)
    assert ingestor.accepted == [("tp-ha-noi", "hn-1", Channel.KAFKA, VALID)]
    assert errors.recorded == []


async def test_dependency_failures_are_retried_until_the_message_is_accepted() -> None:
    ingestor = Ingestor([StorageUnavailable("S3 down"), ConnectionRefusedError("db"), OSError()])
    errors = await _run(ingestor, VALID)
    assert len(ingestor.accepted) == 1
    assert errors.recorded == []


async def test_invalid_bytes_are_recorded_and_dead_lettered_with_the_original() -> None:
    ingestor = Ingestor()
    errors = await _run(ingestor, b"\x00not json")
    assert ingestor.accepted == []
    [(error, letter)] = errors.recorded
    assert (error.source, error.error_type) == ("tp-ha-noi", "decode")
    assert letter.data.original_value() == b"\x00not json"
    assert letter.data.original_topic == TOPIC
    assert letter.data.reason == error.reason
    assert letter.data.source == "tp-ha-noi"


async def test_domain_refusals_are_recorded_not_retried() -> None:
    stale = Refused(RefusalKind.STALE, "revision 1 is older than the newest revision 2")
    ingestor = Ingestor([stale])
    errors = await _run(ingestor, VALID)
    [(error, _)] = errors.recorded
    assert (error.error_type, error.reason, error.external_id) == (
        "stale_revision",
        stale.reason,
        "hn-1",
    )


async def test_a_bug_is_retried_a_few_times_then_recorded() -> None:
    ingestor = Ingestor([ValueError("boom")] * 5)
    errors = await _run(ingestor, VALID)
    [(error, _)] = errors.recorded
    assert error.error_type == "processing"
    assert "ValueError: boom" in error.reason


@pytest.mark.parametrize("topic", ["partner.UPPER.articles", "partner.x.articles.dlq"])
async def test_topics_outside_the_pattern_are_not_consumed(topic: str) -> None:
    ingestor = Ingestor()
    errors = await _run(ingestor, VALID, topic=topic)
    assert ingestor.accepted == [] and errors.recorded == []
