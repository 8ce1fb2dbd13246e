"""The Kafka component against a real broker: start, topics, a round trip as the operator, a
service confined to its own topics, and a partner agency confined by SCRAM-SHA-512 + ACLs to its
own topic on the SASL_SSL listener.

The broker runs on its own ports (the run's PORTAL_STACK_PORT_BASE + 100) and a fresh
data folder, so every run also covers the one-time storage format.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context

from portal_launcher.components.kafka import (
    KafkaComponent,
    acls_of,
    admin_client_options,
    allow_topic,
    ensure_topics,
    partner_ca_file,
    upsert_scram_user,
)
from portal_launcher.credentials import secret_files
from portal_launcher.settings import StackSettings

from .ports import KAFKA_OFFSET, component_port_base

pytestmark = pytest.mark.stack

PORT_BASE = component_port_base(KAFKA_OFFSET)


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaComponent]:
    data_dir: Path = tmp_path_factory.mktemp("kafka-stack")
    settings = StackSettings(port_base=PORT_BASE, data_dir=data_dir)
    ports = (settings.kafka_port, settings.kafka_sasl_port, settings.kafka_controller_port)
    busy = [p for p in ports if not _port_free(settings.host, p)]
    if busy:
        pytest.fail(f"ports {busy} are taken; set PORTAL_STACK_PORT_BASE elsewhere")
    component = KafkaComponent(settings)
    try:
        component.start()
        component.wait_ready(180)
        yield component
    finally:
        component.stop()  # by the recorded pid only
    assert not component.is_running()


def _sasl(settings: StackSettings, user: str, password: str) -> dict[str, object]:
    """A partner's client: SCRAM over TLS, the broker verified with the data folder's CA."""
    return {
        "bootstrap_servers": settings.kafka_sasl_bootstrap,
        "security_protocol": "SASL_SSL",
        "ssl_context": create_ssl_context(cafile=str(partner_ca_file(settings))),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
        "request_timeout_ms": 10000,
    }


def test_version_endpoint_and_layout(kafka: KafkaComponent) -> None:
    assert kafka.version().startswith("4.")
    assert kafka.endpoint() == kafka.settings.kafka_bootstrap
    assert (kafka.data_path / "meta.properties").is_file()
    props = kafka.properties_file.read_text()
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "auto.create.topics.enable=false" in props
    # Nobody is a super user by connecting: only the operator, who signs in.
    assert f"super.users=User:{kafka.settings.kafka_admin_user}\n" in props
    assert "PLAINTEXT:PLAINTEXT" not in props and "ANONYMOUS" not in props
    # The file holds the operator's password: only its owner may read it, as every secret file.
    assert kafka.properties_file in secret_files(kafka.settings)
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in secret_files(kafka.settings))


async def test_a_client_without_credentials_is_refused(kafka: KafkaComponent) -> None:
    s = kafka.settings
    anonymous = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(anonymous.start(), 30)
    await anonymous.close()


async def test_topics_and_plaintext_round_trip(kafka: KafkaComponent) -> None:
    s = kafka.settings
    topic = Topic("portal.test.events", 3, {"cleanup.policy": "delete", "retention.ms": "3600000"})
    assert await ensure_topics(s, [topic]) == ["portal.test.events"]
    assert await ensure_topics(s, [topic]) == []  # idempotent

    admin = AIOKafkaAdminClient(**admin_client_options(s))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic.name])
        assert len(described["partitions"]) == 3
        [resp] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic.name)]
        )
        configs = {c[0]: c[1] for c in resp.resources[0][4]}
        assert configs["retention.ms"] == "3600000"
    finally:
        await admin.close()

    payload = uuid.uuid4().bytes
    producer = AIOKafkaProducer(**admin_client_options(s))
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, payload, key=b"k", partition=1)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic.name, **admin_client_options(s), group_id="test-kafka-component",
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        assert record.value == payload
    finally:
        await consumer.stop()


async def test_the_operator_has_no_scram_password_on_the_partner_listener(
    kafka: KafkaComponent,
) -> None:
    s = kafka.settings
    operator = admin_client_options(s)
    admin = AIOKafkaAdminClient(**_sasl(s, s.kafka_admin_user, operator["sasl_plain_password"]))
    with pytest.raises(KafkaConnectionError):  # SCRAM only there, and the operator has none
        await asyncio.wait_for(admin.start(), 30)
    await admin.close()


async def test_partner_writes_only_its_own_topic(kafka: KafkaComponent) -> None:
    s = kafka.settings
    await ensure_topics(s, [Topic("partner.agency-a"), Topic("partner.agency-b")])
    upsert_scram_user(s, "agency-a", "agency-a-secret")
    allow_topic(s, "agency-a", "partner.agency-a", ["Write"])
    acls = acls_of(s, "User:agency-a")
    assert [(g.resource_name, g.operation) for g in acls] == [("partner.agency-a", "WRITE")]

    producer = AIOKafkaProducer(**_sasl(s, "agency-a", "agency-a-secret"))
    await producer.start()
    try:
        meta = await asyncio.wait_for(producer.send_and_wait("partner.agency-a", b"ok"), 30)
        assert meta.topic == "partner.agency-a"
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait("partner.agency-b", b"no"), 30)
    finally:
        await producer.stop()

    # The record really landed (read back by the operator).
    consumer = AIOKafkaConsumer(
        "partner.agency-a", **admin_client_options(s), auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        assert record.value == b"ok"
    finally:
        await consumer.stop()


async def test_wrong_password_is_refused(kafka: KafkaComponent) -> None:
    s = kafka.settings
    upsert_scram_user(s, "agency-c", "agency-c-secret")
    producer = AIOKafkaProducer(**_sasl(s, "agency-c", "not-the-password"))
    try:
        with pytest.raises(KafkaConnectionError):  # aiokafka wraps SaslAuthenticationFailed
            await producer.start()
    finally:
        await producer.stop()
