"""A slow OpenSearch delays search indexing only: publishing still publishes and serves.

Publishing and search run in-process on the real stack; search reaches OpenSearch through a
delaying TCP proxy (``slow_proxy.py``) with a short request timeout. While OpenSearch is slow,
an approved article is published, readable from publishing's API and announced on Kafka, and
search's writes are held up (the article is not in the index); once OpenSearch is fast again
search's consumer, which kept retrying, indexes it. Nothing is lost, nobody else waited.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from faststream.kafka import KafkaBroker

from portal_contracts.articles import (
    ArticleReviewed,
    ArticleReviewedEvent,
    NormalizedArticle,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_PUBLISHED, ARTICLE_REVIEWED
from portal_launcher.components.kafka import admin_client_options, admin_service_settings
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_publishing.app import create_app as create_publishing
from portal_publishing.domain import make_slug
from portal_publishing.settings import Settings as PublishingSettings
from portal_runtime.kafka import make_broker, publish_event
from portal_runtime.settings import ServiceSettings
from portal_search.app import create_app as create_search
from portal_search.settings import Settings as SearchSettings

from .slow_proxy import DelayingProxy

pytestmark = pytest.mark.stack

T = TypeVar("T")
WAIT_S = 90.0
SLOW_S = 3600.0  # "slow" = far beyond search's request timeout: every call times out


async def wait_for(probe: Callable[[], Awaitable[T]], *, what: str) -> T:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def _settings(stack: StackSettings, service: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {k.lower(): v for k, v in service_environment(stack, service).items()}
    values.update(extra)
    return values


@pytest.fixture
async def proxy(stack_settings: StackSettings) -> AsyncIterator[DelayingProxy]:
    target = urlsplit(stack_settings.opensearch_url)
    assert target.hostname is not None and target.port is not None
    running = await DelayingProxy(target.hostname, target.port).start()
    try:
        yield running
    finally:
        await running.stop()


def approved(article_id: str, title: str) -> ArticleReviewedEvent:
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source="test-slow-search",
            external_id=article_id[:12],
            revision=1,
            decision=ReviewDecision.AUTO_PUBLISHED,
            reviewer="policy:trusted",
            reviewed_at=datetime.now(UTC),
            article=NormalizedArticle(
                title=title,
                summary="Tóm tắt bài viết về công tác xây dựng Đảng.",
                body_html="<p>Nội dung bài viết.</p>",
                body_text="Nội dung bài viết.",
                section="ct-tin-tuc-hoat-dong",
            ),
        ),
    )


async def test_a_slow_opensearch_delays_indexing_but_not_publishing(
    stack_settings: StackSettings, proxy: DelayingProxy
) -> None:
    search = create_search(
        SearchSettings(
            **_settings(
                stack_settings,
                "search",
                opensearch_url=proxy.url,
                opensearch_timeout_s=1.5,
                index_bulk_timeout_s=1.5,
                opensearch_max_retries=0,
            )
        )
    )
    publishing_settings = PublishingSettings(**_settings(stack_settings, "publishing"))
    publishing = create_publishing(publishing_settings)
    broker: KafkaBroker = make_broker(
        ServiceSettings(**admin_service_settings(stack_settings), service_name="test-moderation"),
        None,
    )
    direct = httpx.AsyncClient(base_url=stack_settings.opensearch_url, timeout=10)
    await broker.start()
    try:
        async with (
            LifespanManager(search, startup_timeout=120, shutdown_timeout=30),
            LifespanManager(publishing, startup_timeout=120, shutdown_timeout=30),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=publishing), base_url="http://publishing"
            ) as readers,
        ):
            proxy.delay_s = SLOW_S
            aid = article_id_for("test-slow-search", uuid.uuid4().hex)
            title = f"Hội nghị tổng kết công tác năm {aid[:6]}"
            slug = make_slug(title, aid)
            await publish_event(broker, ARTICLE_REVIEWED.name, approved(aid, title))

            # Publishing publishes and serves it: nothing on its path waits for OpenSearch.
            async def readable() -> dict[str, Any]:
                resp = await readers.get(f"/v1/articles/{slug}")
                return dict(resp.json()) if resp.status_code == 200 else {}

            article = await wait_for(readable, what="the article readable from publishing")
            assert article["article_id"] == aid and article["title"] == title

            async def announced() -> bool:
                return await _on_topic(admin_client_options(stack_settings), aid)

            await wait_for(announced, what="article.published on Kafka")

            # Search took the event and is held up by OpenSearch: the article is not indexed.
            async def search_waits() -> bool:
                return proxy.held_back > 0

            await wait_for(search_waits, what="search's calls to reach the slow OpenSearch")
            missing = await direct.get(f"/articles/_doc/{aid}")
            assert missing.status_code == 404 or not missing.json().get("found"), missing.text

            # OpenSearch recovers: search's consumer, which kept retrying, indexes the article.
            proxy.delay_s = 0.0

            async def indexed() -> bool:
                resp = await direct.get(f"/articles/_doc/{aid}")
                return resp.status_code == 200 and bool(resp.json().get("found"))

            await wait_for(indexed, what="the article indexed once OpenSearch is fast again")
    finally:
        proxy.delay_s = 0.0
        await direct.aclose()
        await broker.stop()


async def _on_topic(kafka: dict[str, Any], article_id: str) -> bool:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [
            TopicPartition(ARTICLE_PUBLISHED.name, p) for p in range(ARTICLE_PUBLISHED.partitions)
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        while [p for p in parts if await consumer.position(p) < end[p]]:
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            for records in batch.values():
                if any(r.key == article_id.encode() for r in records):
                    return True
        return False
    finally:
        await consumer.stop()
