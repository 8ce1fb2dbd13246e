"""Partner Kafka intake against the real broker: SCRAM credentials and ACLs provisioned by the
admin API, messages produced on the SASL listener, refused ones dead-lettered and listed."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from portal_contracts.articles import ArticleIngestedEvent, article_id_for
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_INGESTED, PARTNER_DEAD_LETTERS
from portal_launcher.components.kafka import user_quotas
from portal_launcher.settings import StackSettings

from .conftest import Ingest, partner_producer, read_events

pytestmark = pytest.mark.stack


def _message(external_id: str, title: str = "Tin hoạt động của Đảng bộ", **extra: Any) -> bytes:
    return json.dumps(
        {
            "external_id": external_id,
            "content": {"title": title, "section": "ct-tin-tuc-hoat-dong", "body_html": "<p>x</p>"},
            **extra,
        },
        ensure_ascii=False,
    ).encode()


async def _wait_errors(
    ingest: Ingest, headers: dict[str, str], count: int, timeout_s: float = 30
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        items: list[dict[str, Any]] = (await ingest.http.get("/v1/errors", headers=headers)).json()[
            "items"
        ]
        if len(items) >= count or asyncio.get_running_loop().time() > deadline:
            return items
        await asyncio.sleep(0.3)


async def test_provisioned_partner_produces_and_the_article_is_ingested(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    assert creds["topic"] == f"partner.{source}.articles"
    assert creds["username"] == f"partner-{source}"
    assert creds["mechanism"] == "SCRAM-SHA-512"
    assert creds["bootstrap_servers"] == ingest.settings.kafka_partner_bootstrap_servers
    assert creds["password"].isalnum() and len(creds["password"]) >= 32
    # Over TLS, verified with the CA certificate handed out with the credentials.
    assert creds["security_protocol"] == "SASL_SSL"
    assert creds["ssl_ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert creds["produce_byte_rate"] == ingest.settings.partner_produce_byte_rate

    external_id = f"kf-{uuid.uuid4().hex[:8]}"
    # The payload claims another source: identity comes from the topic, so it is refused.
    spoof = _message(f"{external_id}-spoof", source="bao-nhan-dan")
    producer = partner_producer(creds)
    await producer.start()
    try:
        await producer.send_and_wait(creds["topic"], _message(external_id), key=b"k")
        await producer.send_and_wait(creds["topic"], spoof)
    finally:
        await producer.stop()

    article_id = article_id_for(source, external_id)
    # The topic was created after the app started: found by the pattern within seconds.
    [event] = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: e.subject == article_id,
        want=1,
        timeout_s=45,
    )
    assert isinstance(event, ArticleIngestedEvent)
    assert event.data.source == source
    assert event.data.channel == "kafka"
    assert event.data.revision == 1
    status = (await ingest.http.get(f"/v1/articles/{external_id}", headers=headers)).json()
    assert status["revisions"][0]["channel"] == "kafka"

    [error] = await _wait_errors(ingest, headers, 1)
    assert error["error_type"] == "validation"
    assert error["reason"] == "source: Extra inputs are not permitted"


async def test_a_partner_producer_that_compresses_its_batches_is_read(ingest: Ingest) -> None:
    # Partners' Kafka clients commonly compress (compression.type); each codec is read.
    source, _ = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    codecs = ("lz4", "zstd", "snappy", "gzip")
    run = uuid.uuid4().hex[:8]
    for codec in codecs:
        producer = partner_producer(creds, compression_type=codec)
        await producer.start()
        try:
            await producer.send_and_wait(creds["topic"], _message(f"{codec}-{run}"))
        finally:
            await producer.stop()

    wanted = {article_id_for(source, f"{codec}-{run}") for codec in codecs}
    events = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: e.subject in wanted,
        want=len(codecs),
        timeout_s=45,
    )
    assert {e.subject for e in events} == wanted


async def test_a_partner_cannot_write_to_another_agencys_topic(ingest: Ingest) -> None:
    source_a, _ = await ingest.partner()
    source_b, _ = await ingest.partner()
    creds_a = await ingest.kafka_credentials(source_a)
    creds_b = await ingest.kafka_credentials(source_b)

    producer = partner_producer(creds_a)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(
                producer.send_and_wait(creds_b["topic"], _message("intrusion")), timeout=30
            )
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait(ARTICLE_INGESTED.name, b"{}"), timeout=30)
    finally:
        await producer.stop()


async def test_partner_listener_is_tls_only_with_a_produce_quota_per_partner(
    ingest: Ingest, stack_settings: StackSettings
) -> None:
    source, _ = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    # The broker holds the quota the credentials announce, on this partner's user only.
    quotas = user_quotas(stack_settings, creds["username"])
    assert quotas == {"producer_byte_rate": float(ingest.settings.partner_produce_byte_rate)}
    assert user_quotas(stack_settings, "ingest") == {}

    producer = partner_producer(creds)  # TLS: works
    await producer.start()
    await producer.stop()
    # The same credentials without TLS: the listener speaks only TLS, so no sign-in happens.
    plain = AIOKafkaProducer(
        bootstrap_servers=creds["bootstrap_servers"],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=creds["mechanism"],
        sasl_plain_username=creds["username"],
        sasl_plain_password=creds["password"],
        request_timeout_ms=5000,
    )
    with pytest.raises(KafkaError):
        await asyncio.wait_for(plain.start(), timeout=30)
    await plain.stop()


async def test_rotation_replaces_the_password(ingest: Ingest) -> None:
    source, _ = await ingest.partner()
    old = await ingest.kafka_credentials(source)
    new = await ingest.kafka_credentials(source)
    assert new["password"] != old["password"]

    producer = partner_producer(new)
    await producer.start()
    try:
        await producer.send_and_wait(new["topic"], _message(f"rot-{uuid.uuid4().hex[:6]}"))
    finally:
        await producer.stop()

    stale = partner_producer(old)
    with pytest.raises(KafkaError):  # authentication fails with the replaced password
        await asyncio.wait_for(stale.start(), timeout=30)
    await stale.stop()

    access = await ingest.http.get(
        f"/admin/v1/sources/{source}/kafka-credentials", headers=ingest.admin_headers
    )
    assert access.status_code == 200
    assert "password" not in access.json()
    assert access.json()["topic"] == new["topic"]


async def test_malformed_message_is_dead_lettered_listed_and_the_next_one_processed(
    ingest: Ingest,
) -> None:
    source, headers = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    external_id = f"ok-{uuid.uuid4().hex[:8]}"
    stale_id = f"st-{uuid.uuid4().hex[:8]}"
    bad_bytes = b'{"external_id": "broken", "content": {"title": '
    no_title = json.dumps(
        {"external_id": "no-title", "content": {"body_html": "<p>x</p>"}}
    ).encode()
    wrong_section = json.dumps(
        {"external_id": "sec", "content": {"title": "t", "section": "tong-bi-thu"}}
    ).encode()

    producer = partner_producer(creds)
    await producer.start()
    try:
        for value in (
            bad_bytes,
            no_title,
            wrong_section,
            _message(stale_id, revision=3),
            _message(stale_id, "older", revision=2),
            _message(external_id),
        ):
            # One key: one partition, so the order (and the offsets) are the order sent.
            await producer.send_and_wait(creds["topic"], value, key=b"one")
    finally:
        await producer.stop()

    # The valid message after the bad ones is processed.
    processed = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: e.subject == article_id_for(source, external_id),
        want=1,
        timeout_s=45,
    )
    assert len(processed) == 1, "the valid message after the refused ones was not ingested"

    errors = await _wait_errors(ingest, headers, 4)
    by_offset = sorted(errors, key=lambda e: e["offset"])
    assert [e["error_type"] for e in by_offset] == [
        "decode",
        "validation",
        "forbidden",
        "stale_revision",
    ]
    assert by_offset[0]["reason"].startswith("not valid UTF-8 JSON")
    assert by_offset[1]["reason"] == "content.title: Field required"
    assert by_offset[1]["external_id"] == "no-title"
    assert "section 'tong-bi-thu' is not allowed" in by_offset[2]["reason"]
    assert by_offset[3]["external_id"] == stale_id
    assert by_offset[3]["revision"] == 2
    assert by_offset[3]["reason"].startswith("revision 2 is older than the newest revision 3")

    def ours(e: Envelope) -> bool:
        return isinstance(e, DeadLetterEvent) and e.data.original_topic == creds["topic"]

    letters = await read_events(ingest.kafka, PARTNER_DEAD_LETTERS, ours, want=4, settle_s=1.0)
    # One dead letter per refused message, each at the offset its error names.
    assert sorted(e.data.original_offset for e in letters) == [  # type: ignore[attr-defined]
        e["offset"] for e in by_offset
    ]
    first = min(letters, key=lambda e: e.data.original_offset)  # type: ignore[attr-defined]
    assert isinstance(first, DeadLetterEvent)
    assert first.data.original_value() == bad_bytes
    assert first.data.reason.startswith("not valid UTF-8 JSON")
    assert first.data.source == source
    assert first.data.consumer_group == ingest.settings.partner_consumer_group


async def test_messages_of_an_inactive_source_are_refused(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    creds = await ingest.kafka_credentials(source)
    await ingest.http.put(
        f"/admin/v1/sources/{source}",
        json={"name": "Tạm dừng", "kind": "province", "sections": [], "active": False},
        headers=ingest.admin_headers,
    )
    producer = partner_producer(creds)
    await producer.start()
    try:
        await producer.send_and_wait(creds["topic"], _message("paused"))
    finally:
        await producer.stop()

    def ours(e: Envelope) -> bool:
        return isinstance(e, DeadLetterEvent) and e.data.original_topic == creds["topic"]

    [letter] = await read_events(ingest.kafka, PARTNER_DEAD_LETTERS, ours, want=1, timeout_s=45)
    assert letter.data.reason == f"source '{source}' is inactive"  # type: ignore[attr-defined]
    # The inactive agency's key is refused too (it would see the error once re-activated).
    assert (await ingest.http.get("/v1/errors", headers=headers)).status_code == 403
