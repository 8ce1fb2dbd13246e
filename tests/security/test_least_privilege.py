"""Least privilege on the real stack: each service's own credentials (exactly what the launcher
gives it) reach its own database, buckets, topics and consumer groups, and not another
service's. Each check shows the service doing its own work first, then being refused."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from minio import Minio
from minio.error import S3Error

from portal_contracts.topics import (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    QUESTION_SUBMITTED,
    SUBMISSION_SUBMITTED,
)
from portal_launcher.components.kafka import acls_of
from portal_launcher.components.postgres import SERVICE_DATABASES
from portal_launcher.components.s3 import bucket_grants
from portal_launcher.credentials import secret_files
from portal_launcher.kafka_acls import principal, service_grants
from portal_launcher.services import BACKENDS, service_environment
from portal_launcher.settings import StackSettings
from portal_runtime.kafka import started
from portal_runtime.kafka_security import client_options
from portal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.stack

RUN = uuid.uuid4().hex[:8]


def _env(stack: StackSettings, service: str) -> dict[str, str]:
    return service_environment(stack, service)


def _kafka(stack: StackSettings, service: str) -> dict[str, Any]:
    """The client options the service's own settings give (its SCRAM user)."""
    env = {k.lower(): v for k, v in _env(stack, service).items()}
    return client_options(ServiceSettings(**env))  # type: ignore[arg-type]


# -- databases ------------------------------------------------------------------------------------
async def _connect(url: str, database: str | None = None) -> asyncpg.Connection:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + f"/{database}"
    return await asyncpg.connect(dsn, timeout=10)


async def test_each_service_role_owns_its_database_and_enters_no_other(
    stack_settings: StackSettings,
) -> None:
    for service in SERVICE_DATABASES:
        url = _env(stack_settings, service)["DATABASE_URL"]
        own = await _connect(url)
        try:
            role = await own.fetchrow(
                "SELECT current_user AS name, rolsuper, rolcreatedb, rolcreaterole "
                "FROM pg_roles WHERE rolname = current_user"
            )
            owner = await own.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            )
            # Its own data: it may create and read tables there (migrations run as this role).
            await own.execute(f"CREATE TABLE lp_probe_{RUN} (id int)")
            await own.execute(f"DROP TABLE lp_probe_{RUN}")
        finally:
            await own.close()
        assert role["name"] == service and owner == service
        assert not (role["rolsuper"] or role["rolcreatedb"] or role["rolcreaterole"])
        for other in SERVICE_DATABASES:
            if other == service:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await _connect(url, other)


async def test_the_tables_of_a_database_belong_to_its_service(
    stack_settings: StackSettings,
) -> None:
    """Everything the migrations made is the service's own, nothing the superuser's."""
    for service in SERVICE_DATABASES:
        conn = await _connect(_env(stack_settings, service)["DATABASE_URL"])
        try:
            tables = await conn.fetch(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        finally:
            await conn.close()
        assert tables, f"{service}: no tables (migrations not run?)"
        assert {t["tableowner"] for t in tables} == {service}


# -- object storage -------------------------------------------------------------------------------
def _s3(stack: StackSettings, service: str) -> Minio:
    env = _env(stack, service)
    return Minio(
        stack.s3_endpoint.removeprefix("http://"),
        access_key=env["S3_ACCESS_KEY"],
        secret_key=env["S3_SECRET_KEY"],
        secure=False,
    )


def _put(client: Minio, bucket: str, key: str) -> None:
    data = f"thử nghiệm {RUN}".encode()
    client.put_object(bucket, key, io.BytesIO(data), len(data))


def _get(client: Minio, bucket: str, key: str) -> bytes:
    resp = client.get_object(bucket, key)
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


def _denied(action: Any) -> None:
    with pytest.raises(S3Error) as refused:
        action()
    assert refused.value.code == "AccessDenied", refused.value


def test_each_s3_key_reaches_only_its_service_buckets(stack_settings: StackSettings) -> None:
    media, raw = stack_settings.s3_bucket, stack_settings.s3_raw_bucket
    ingest, normalize = _s3(stack_settings, "ingest"), _s3(stack_settings, "normalize")
    publishing = _s3(stack_settings, "publishing")
    image, payload = f"lp/{RUN}/image.webp", f"lp/{RUN}/payload.json"

    # Each one's own work: ingest archives payloads, normalize stores images, publishing serves.
    _put(ingest, raw, payload)
    assert _get(ingest, raw, payload).decode().endswith(RUN)
    _put(normalize, media, image)
    assert _get(publishing, media, image).decode().endswith(RUN)

    # Another service's bucket: the raw partner payloads are ingest's alone.
    _denied(lambda: _get(normalize, raw, payload))
    _denied(lambda: _get(publishing, raw, payload))
    _denied(lambda: _get(ingest, media, image))
    _denied(lambda: _put(ingest, media, f"lp/{RUN}/intruder"))
    # Publishing only reads what normalize stored.
    _denied(lambda: _put(publishing, media, f"lp/{RUN}/defaced.webp"))
    _denied(lambda: normalize.make_bucket(f"lp-{RUN}"))


def test_services_without_object_storage_get_no_s3_key(stack_settings: StackSettings) -> None:
    for service in BACKENDS:
        env = _env(stack_settings, service)
        assert ("S3_SECRET_KEY" in env) == (service in bucket_grants(stack_settings)), service
    keys = {_env(stack_settings, s)["S3_ACCESS_KEY"] for s in bucket_grants(stack_settings)}
    assert len(keys) == len(bucket_grants(stack_settings))  # one key per service


# -- Kafka ----------------------------------------------------------------------------------------
def test_the_broker_holds_exactly_the_acls_derived_from_the_registry(
    stack_settings: StackSettings,
) -> None:
    for service in BACKENDS:
        assert acls_of(stack_settings, principal(service)) == service_grants(service), service


@pytest.fixture
async def normalize_producer(stack_settings: StackSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        **_kafka(stack_settings, "normalize"), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def test_a_service_writes_its_own_topics_and_no_other(
    normalize_producer: AIOKafkaProducer,
) -> None:
    meta = await asyncio.wait_for(
        normalize_producer.send_and_wait(ARTICLE_NORMALIZED.name, b"{}", key=RUN.encode()), 30
    )
    assert meta.topic == ARTICLE_NORMALIZED.name
    # Forging another stage's event (normalize parses untrusted input) is refused by the broker.
    for topic in (ARTICLE_PUBLISHED.name, ARTICLE_INGESTED.name):
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(normalize_producer.send_and_wait(topic, b"{}"), 30)


async def _first_poll(consumer: AIOKafkaConsumer) -> None:
    # A refused start (the point of most calls here) stops the client too.
    await started(consumer)
    try:
        await asyncio.wait_for(consumer.getmany(timeout_ms=2000), 60)
    finally:
        await consumer.stop()


async def test_a_service_reads_its_own_topics_in_its_own_groups_only(
    stack_settings: StackSettings,
) -> None:
    normalize = _kafka(stack_settings, "normalize")
    # Its own input, in a group named after it.
    await _first_poll(
        AIOKafkaConsumer(ARTICLE_INGESTED.name, **normalize, group_id=f"normalize-lp-{RUN}")
    )
    # The people's questions and submissions (engagement -> moderation) are not normalize's.
    for topic in (QUESTION_SUBMITTED.name, SUBMISSION_SUBMITTED.name):
        with pytest.raises(TopicAuthorizationFailedError):
            await _first_poll(AIOKafkaConsumer(topic, **normalize, group_id=f"normalize-{RUN}"))
    # Nor another service's consumer group (joining it would steal moderation's partitions).
    with pytest.raises(GroupAuthorizationFailedError):
        await _first_poll(
            AIOKafkaConsumer(ARTICLE_INGESTED.name, **normalize, group_id="moderation")
        )
    # Reading without a group is still reading: refused on a topic it does not consume.
    engagement = _kafka(stack_settings, "engagement")
    with pytest.raises(TopicAuthorizationFailedError):
        await _first_poll(AIOKafkaConsumer(ARTICLE_INGESTED.name, **engagement, group_id=None))


async def test_the_internal_listener_refuses_clients_without_credentials(
    stack_settings: StackSettings,
) -> None:
    anonymous = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap)
    with pytest.raises(Exception):  # noqa: B017 - any failure to connect; no anonymous client
        await asyncio.wait_for(anonymous.start(), 30)
    await anonymous.stop()


# -- admin tokens and secret files ---------------------------------------------------------------
def test_every_service_has_its_own_admin_token(stack_settings: StackSettings) -> None:
    tokens = {_env(stack_settings, s)["ADMIN_TOKEN"] for s in BACKENDS}
    assert len(tokens) == len(BACKENDS)
    assert all(len(t) >= 32 for t in tokens)


def test_secret_files_are_readable_by_their_owner_only(stack_settings: StackSettings) -> None:
    files = secret_files(stack_settings)
    names = {f.name for f in files}
    assert {f"{s}.json" for s in BACKENDS} | {"stack.json", "server.properties"} <= names
    assert {"s3.json", "ca-key.pem", "kafka-server.pem"} <= names
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, f"{path} is {oct(path.stat().st_mode)}"


async def test_another_services_admin_token_is_refused(stack_settings: StackSettings) -> None:
    """Ingest's admin API (partners' keys) answers to ingest's token only, in the app as the
    launcher configures it."""
    from asgi_lifespan import LifespanManager

    from portal_ingest.app import create_app
    from portal_ingest.settings import Settings

    env = {k.lower(): v for k, v in _env(stack_settings, "ingest").items()}
    app = create_app(Settings(**env, feed_scheduler_enabled=False))  # type: ignore[arg-type]
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http,
    ):
        own = await http.get(
            "/admin/v1/sources", headers={"Authorization": f"Bearer {env['admin_token']}"}
        )
        assert own.status_code == 200
        for other in BACKENDS:
            if other == "ingest":
                continue
            token = _env(stack_settings, other)["ADMIN_TOKEN"]
            refused = await http.get(
                "/admin/v1/sources", headers={"Authorization": f"Bearer {token}"}
            )
            assert refused.status_code in (401, 403), (other, refused.status_code)
