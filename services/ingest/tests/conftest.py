"""Fixtures of the ingest tests that run against the real local stack.

One ingest app runs in-process for the whole session (its lifespan: migrations, consumers,
relay); each test makes its own agencies and ids, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.helpers import create_ssl_context
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from portal_contracts.articles import ArticleIngested
from portal_contracts.codec import decode
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest.app import create_app
from portal_ingest.settings import Settings
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_runtime.kafka import started
from portal_runtime.storage import ObjectStore

from .feed_server import FeedServer

STANDARD_SECTIONS = ["ct-tin-tuc-hoat-dong", "ct-xay-dung-dang", "ct-van-ban-tai-lieu"]
# The "pipeline" the bulk lane waits for in these tests, in place of normalize and the rest: a
# consumer group of article.ingested that catches up continually, unless a test stalls it.
PIPELINE_GROUP = f"ingest-test-pipeline-{uuid.uuid4().hex[:8]}"
BULK_WINDOW = 5


@dataclass
class Pipeline:
    kafka: dict[str, Any]  # the operator's client options
    stalled: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def drain(self) -> None:
        """Catch up: the group commits the end of article.ingested."""
        async with self._lock:
            await self._commit_the_end()

    @contextlib.asynccontextmanager
    async def stall(self) -> AsyncIterator[None]:
        """Nothing drains meanwhile (from a drained start): a queue builds up downstream."""
        async with self._lock:  # a catch-up under way ends first, none starts after
            self.stalled = True
            await self._commit_the_end()
        try:
            yield
        finally:
            self.stalled = False

    async def run(self) -> None:
        while True:
            async with self._lock:
                if not self.stalled:
                    with contextlib.suppress(Exception):  # Kafka away: the next round
                        await self._commit_the_end()
            await asyncio.sleep(0.3)

    async def _commit_the_end(self) -> None:
        # Started by the runtime's own helper: this loop runs all session, Kafka included in
        # the chaos suite's outages, and a start that fails must not leave its client behind.
        consumer = await started(
            AIOKafkaConsumer(**self.kafka, group_id=PIPELINE_GROUP, enable_auto_commit=False)
        )
        try:
            topic = ARTICLE_INGESTED.name
            partitions = [TopicPartition(topic, p) for p in range(ARTICLE_INGESTED.partitions)]
            consumer.assign(partitions)
            await consumer.commit(dict(await consumer.end_offsets(partitions)))
        finally:
            await consumer.stop()


@pytest.fixture(scope="session")
async def pipeline(stack_settings: StackSettings) -> AsyncIterator[Pipeline]:
    running = Pipeline(admin_client_options(stack_settings))
    task = asyncio.create_task(running.run())
    yield running
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture(scope="session")
def feed_server() -> Iterator[FeedServer]:
    """A local site serving feeds, sitemaps and pages; the only loopback target ingest may
    fetch in these tests."""
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def outside_server() -> Iterator[FeedServer]:
    """A loopback site ingest must never reach (redirect targets in address tests)."""
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ingest_settings(stack_settings: StackSettings, feed_server: FeedServer) -> Settings:
    values: dict[str, Any] = {
        k.lower(): v for k, v in service_environment(stack_settings, "ingest").items()
    }
    values.update(
        # Feeds: only the test site, no pacing, short timeouts; polls run when a test asks
        # (fetch now, or a scheduler tick), so tests see exactly the polls they make.
        feed_allowed_internal_targets=[feed_server.target],
        feed_scheduler_enabled=False,
        host_min_delay_s=0,
        feed_retries=1,
        feed_retry_backoff_s=0.05,
        feed_request_timeout_s=2.0,
        feed_read_timeout_s=2.0,
        feed_min_interval_s=1,
        robots_cache_s=0,
        # The bulk lane follows a pipeline the tests control, with a small window.
        bulk_lane_hops=[f"{PIPELINE_GROUP}:{ARTICLE_INGESTED.name}"],
        bulk_lane_min_window=BULK_WINDOW,
        bulk_lane_max_window=2 * BULK_WINDOW,
        bulk_lane_measure_interval_s=0.2,
    )
    return Settings(**values)


@dataclass
class Ingest:
    """The running app, its settings, and helpers to call it as an operator or a partner."""

    settings: Settings
    http: httpx.AsyncClient
    app: FastAPI
    # The stack's operator: tests read and write any topic (the app uses its own principal).
    kafka: dict[str, Any] = field(default_factory=dict)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token.get_secret_value()}"}

    async def new_source(self, sections: list[str] | None = None, active: bool = True) -> str:
        code = f"t-{uuid.uuid4().hex[:10]}"
        resp = await self.http.put(
            f"/admin/v1/sources/{code}",
            json={
                "name": "Tỉnh ủy thử nghiệm",
                "kind": "province",
                "sections": sections if sections is not None else STANDARD_SECTIONS,
                "active": active,
            },
            headers=self.admin_headers,
        )
        assert resp.status_code == 201, resp.text
        return code

    async def new_key(self, source: str) -> str:
        resp = await self.http.post(
            f"/admin/v1/sources/{source}/api-keys", json={}, headers=self.admin_headers
        )
        assert resp.status_code == 201, resp.text
        key: str = resp.json()["api_key"]
        return key

    async def partner(self, sections: list[str] | None = None) -> tuple[str, dict[str, str]]:
        source = await self.new_source(sections)
        return source, {"Authorization": f"Bearer {await self.new_key(source)}"}

    async def kafka_credentials(self, source: str) -> dict[str, Any]:
        resp = await self.http.post(
            f"/admin/v1/sources/{source}/kafka-credentials", headers=self.admin_headers
        )
        assert resp.status_code == 201, resp.text
        creds: dict[str, Any] = resp.json()
        return creds

    async def wait_status(
        self, headers: dict[str, str], external_id: str, status: str, timeout_s: float = 30
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            resp = await self.http.get(f"/v1/articles/{external_id}", headers=headers)
            if resp.status_code == 200 and resp.json()["status"] == status:
                body: dict[str, Any] = resp.json()
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"status never became {status}: {resp.status_code} {resp.text}"
                )
            await asyncio.sleep(0.3)


@pytest.fixture(scope="session")
async def ingest(
    ingest_settings: Settings, stack_settings: StackSettings, pipeline: Pipeline
) -> AsyncIterator[Ingest]:
    app = create_app(ingest_settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield Ingest(ingest_settings, http, app, admin_client_options(stack_settings))


async def read_events(
    kafka: dict[str, Any],
    topic: str,
    match: Callable[[Envelope], bool],
    *,
    want: int,
    timeout_s: float = 30.0,
    settle_s: float = 0.0,
) -> list[Envelope]:
    """Events of ``topic`` (from its beginning) that ``match``: at least ``want`` of them, then
    ``settle_s`` more seconds to catch any extra one."""
    # No group: every partition, from the beginning, nothing committed.
    consumer = AIOKafkaConsumer(
        topic, **kafka, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Envelope] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        settle_until: float | None = None
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    try:
                        event = decode(record.value)
                    except ValueError:
                        continue
                    if match(event):
                        found.append(event)
            if len(found) >= want:
                if settle_until is None:
                    settle_until = loop.time() + settle_s
                if loop.time() >= settle_until:
                    break
    finally:
        await consumer.stop()
    return found


async def produce(
    kafka: dict[str, Any], topic: str, value: bytes, key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def partner_producer(creds: dict[str, Any], **options: Any) -> AIOKafkaProducer:
    """A partner's producer as the partner guide configures it (SASL_SSL, SCRAM-SHA-512, the
    broker verified with the CA certificate handed out with the credentials)."""
    return AIOKafkaProducer(
        **options,
        bootstrap_servers=creds["bootstrap_servers"],
        security_protocol=creds["security_protocol"],
        sasl_mechanism=creds["mechanism"],
        sasl_plain_username=creds["username"],
        sasl_plain_password=creds["password"],
        ssl_context=create_ssl_context(cadata=creds["ssl_ca_pem"]),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15000,
    )


async def archived_original(store: ObjectStore, data: ArticleIngested) -> bytes:
    """The original an article.ingested event names: its byte range of a pack, or an object."""
    assert data.raw_object_key is not None
    if data.raw_byte_range is None:
        return await store.get(data.raw_object_key)
    part = data.raw_byte_range
    return await store.get_range(data.raw_object_key, part.offset, part.length)
