"""The partner intake's decisions (retry, refuse, accept), driven like the consumer drives it,
without Kafka or a database; the real broker, database and S3 are covered by
test_partner_kafka_stack.py."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import ArticleAction, Channel
from portal_ingest.domain import INTERNAL_FAILURE_REASON, Status, partner_reason
from portal_ingest.handlers import partner_error, partner_subscription
from portal_ingest.intake_usecases import IntakeResult, Receipt, Submission
from portal_ingest.settings import Settings
from portal_ingest.usecases import RefusalKind, Refused, StorageUnavailable
from portal_runtime.batch import Record
from portal_runtime.testing import Ledger, drive

TOPIC = "partner.tp-ha-noi.articles"
VALID = json.dumps({"external_id": "hn-1", "content": {"title": "Tin"}}).encode()


class Ingestor:
    """The batch intake's answers, without a database: a failure raised for a whole batch, or
    a refusal for the messages whose external id is in ``refuse``."""

    def __init__(
        self, failures: list[Exception] | None = None, refuse: dict[str, Refused] | None = None
    ) -> None:
        self.failures = list(failures or [])
        self.refuse = dict(refuse or {})
        self.accepted: list[tuple[str, str, Channel, bytes]] = []
        self.batches: list[int] = []

    async def submit_batch(
        self, batch: Sequence[Submission], session: Callable[[], Awaitable[AsyncSession]]
    ) -> list[IntakeResult]:
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(len(batch))
        results: list[IntakeResult] = []
        for sub in batch:
            refusal = self.refuse.get(sub.message.external_id)
            if refusal is not None:
                results.append(refusal)
                continue
            self.accepted.append((sub.source, sub.message.external_id, sub.channel, sub.raw))
            results.append(
                Receipt(
                    article_id="a",
                    source=sub.source,
                    external_id=sub.message.external_id,
                    revision=1,
                    action=ArticleAction.UPSERT,
                    status=Status.RECEIVED,
                    duplicate=False,
                    received_at=datetime.now(UTC),
                )
            )
        return results


async def _run(ingestor: Ingestor, *values: bytes, topic: str = TOPIC) -> Ledger:
    records = [Record(topic, 0, i, b"hn-1", v) for i, v in enumerate(values)]
    return await drive(partner_subscription(Settings(), ingestor), records)


async def test_the_source_comes_from_the_topic() -> None:
    ingestor = Ingestor()
    ledger = await _run(ingestor, VALID)
    assert ingestor.accepted == [("tp-ha-noi", "hn-1", Channel.KAFKA, VALID)]
    assert ledger.rejections == []


async def test_dependency_failures_are_retried_until_the_message_is_accepted() -> None:
    ingestor = Ingestor([StorageUnavailable("S3 down"), ConnectionRefusedError("db"), OSError()])
    ledger = await _run(ingestor, VALID)
    assert len(ingestor.accepted) == 1
    assert ledger.rejections == []


async def test_invalid_bytes_are_recorded_and_dead_lettered_with_the_original() -> None:
    ingestor = Ingestor()
    ledger = await _run(ingestor, VALID, b"\x00not json")
    assert ingestor.accepted == [("tp-ha-noi", "hn-1", Channel.KAFKA, VALID)]  # the batch goes on
    [rejection] = ledger.rejections
    error, letter = partner_error(rejection, "ingest-partners")
    assert (error.source, error.error_type, error.offset) == ("tp-ha-noi", "decode", 1)
    assert letter.data.original_value() == b"\x00not json"
    assert letter.data.original_topic == TOPIC
    assert letter.data.reason == error.reason
    assert letter.data.source == "tp-ha-noi"


async def test_the_batch_goes_to_the_intake_as_one_and_a_refusal_holds_back_nothing() -> None:
    stale = Refused(RefusalKind.STALE, "revision 1 is older than the newest revision 2")
    ingestor = Ingestor(refuse={"hn-2": stale})
    values = [
        json.dumps({"external_id": ext, "content": {"title": "Tin"}}).encode()
        for ext in ("hn-1", "hn-2", "hn-3")
    ]
    ledger = await _run(ingestor, *values)
    assert ingestor.batches == [3]
    assert [ext for _, ext, _, _ in ingestor.accepted] == ["hn-1", "hn-3"]
    [rejection] = ledger.rejections
    assert (rejection.record.offset, rejection.error_type) == (1, "stale_revision")
    assert ledger.commits == 1


async def test_domain_refusals_are_recorded_not_retried() -> None:
    stale = Refused(RefusalKind.STALE, "revision 1 is older than the newest revision 2")
    ingestor = Ingestor(refuse={"hn-1": stale})
    ledger = await _run(ingestor, json.dumps({**json.loads(VALID), "revision": 1}).encode())
    [rejection] = ledger.rejections
    error, _ = partner_error(rejection, "ingest-partners")
    assert (error.error_type, error.reason, error.external_id, error.revision) == (
        "stale_revision",
        stale.reason,
        "hn-1",
        1,
    )
    assert ledger.commits == 1  # refused in the batch's transaction, not retried


async def test_a_bug_is_retried_a_few_times_then_recorded() -> None:
    ingestor = Ingestor([ValueError("boom")] * 5)
    ledger = await _run(ingestor, VALID)
    [rejection] = ledger.rejections
    assert rejection.error_type == "processing"
    error, letter = partner_error(rejection, "ingest-partners")
    # Operators read what went wrong in the dead letter; the partner reads a generic reason.
    assert "ValueError: boom" in letter.data.reason
    assert (error.error_type, error.reason) == ("processing", INTERNAL_FAILURE_REASON)
    assert "boom" not in error.reason and "ValueError" not in error.reason


def test_every_domain_refusal_keeps_its_reason_for_the_partner() -> None:
    for kind in RefusalKind:
        assert partner_reason(kind.value, "revision 1 is stale") == "revision 1 is stale"
    assert partner_reason("validation", "content.title: Field required") == (
        "content.title: Field required"
    )
    assert partner_reason("routing", "topic x is not a partner topic") == INTERNAL_FAILURE_REASON


@pytest.mark.parametrize("topic", ["partner.UPPER.articles", "partner.x.articles.dlq"])
def test_topics_outside_the_pattern_are_not_consumed(topic: str) -> None:
    pattern = partner_subscription(Settings(), Ingestor()).pattern
    assert pattern is not None
    assert re.fullmatch(pattern, "partner.tp-ha-noi.articles")
    assert re.fullmatch(pattern, topic) is None
