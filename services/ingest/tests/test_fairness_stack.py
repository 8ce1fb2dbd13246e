"""Fairness between agencies on the real stack: one agency's backfill or burst waits for the
pipeline, while another agency's news goes to article.ingested at once.

The "pipeline" here is a consumer group of article.ingested (``conftest.Pipeline``) that these
tests stall: while it does not move, the queue it holds stays within the bulk lane's window;
when it catches up again, the backfill follows, all of it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from portal_contracts.articles import article_id_for
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_INGESTED
from portal_runtime.admission import PipelineGate

from .conftest import BULK_WINDOW, Ingest, Pipeline, read_events

pytestmark = pytest.mark.stack


def _article(title: str) -> dict[str, Any]:
    return {"title": title, "section": "ct-tin-tuc-hoat-dong", "body_html": f"<p>{title}</p>"}


async def _push(ingest: Ingest, headers: dict[str, str], ids: list[str], **body: Any) -> None:
    sem = asyncio.Semaphore(8)

    async def one(external_id: str) -> None:
        async with sem:
            resp = await ingest.http.put(
                f"/v1/articles/{external_id}",
                json={"content": _article(f"Bài {external_id}"), **body},
                headers=headers,
            )
            assert resp.status_code == 202, resp.text

    await asyncio.gather(*(one(i) for i in ids))


async def _ingested(ingest: Ingest, source: str, ids: list[str], want: int) -> list[Envelope]:
    wanted = {article_id_for(source, i) for i in ids}
    return await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: e.subject in wanted,
        want=want,
        timeout_s=60,
    )


async def _ingested_now(ingest: Ingest, source: str, ids: list[str]) -> list[bytes]:
    """Keys of those articles on article.ingested, as far as the topic goes now."""
    wanted = {article_id_for(source, i).encode() for i in ids}
    consumer = AIOKafkaConsumer(
        ARTICLE_INGESTED.name,
        **ingest.kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        for tp in ends:
            consumer.seek(tp, 0)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                found += [r.key for r in records if r.key in wanted]
    finally:
        await consumer.stop()
    return found


async def _seen_by_the_gate(ingest: Ingest, at_least: int) -> None:
    gate = ingest.app.state.service.relay_admission
    assert isinstance(gate, PipelineGate)
    for _ in range(600):
        if gate.window.in_flight >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the gate never saw {at_least} articles queued downstream")


async def _news_goes_while_the_bulk_waits(
    ingest: Ingest, bulk_source: str, bulk_ids: list[str], queued_before: int
) -> int:
    """Another agency's item reaches article.ingested; returns how many bulk items went."""
    news_source, news_headers = await ingest.partner()
    news = [f"tin-{uuid.uuid4().hex[:8]}"]
    await _push(ingest, news_headers, news)
    await _ingested(ingest, news_source, news, want=1)
    await _seen_by_the_gate(ingest, queued_before)
    later = [f"tin-{uuid.uuid4().hex[:8]}"]
    await _push(ingest, news_headers, later)
    await _ingested(ingest, news_source, later, want=1)
    return len(await _ingested_now(ingest, bulk_source, bulk_ids))


async def _all_follow_once_the_pipeline_drains(
    ingest: Ingest, pipeline: Pipeline, source: str, ids: list[str]
) -> None:
    for _ in range(120):
        await pipeline.drain()
        if len(await _ingested_now(ingest, source, ids)) >= len(ids):
            break
        await asyncio.sleep(0.5)
    events = await _ingested(ingest, source, ids, want=len(ids))
    assert sorted(e.subject for e in events) == sorted(article_id_for(source, i) for i in ids)


async def test_a_marked_backfill_waits_for_the_pipeline_and_other_news_does_not(
    ingest: Ingest, pipeline: Pipeline
) -> None:
    async with pipeline.stall():
        province, headers = await ingest.partner()
        archive = [f"luu-tru-{i}-{uuid.uuid4().hex[:6]}" for i in range(60)]
        await _push(ingest, headers, archive, backfill=True)

        went = await _news_goes_while_the_bulk_waits(ingest, province, archive, BULK_WINDOW)

        # At most the window (it is at most twice the minimum here) entered the pipeline.
        assert BULK_WINDOW <= went <= 2 * BULK_WINDOW, went
        await _all_follow_once_the_pipeline_drains(ingest, pipeline, province, archive)


async def test_an_unmarked_burst_is_detected_and_waits_like_a_backfill(
    ingest: Ingest, pipeline: Pipeline
) -> None:
    async with pipeline.stall():
        province, headers = await ingest.partner()
        threshold = ingest.settings.burst_items
        burst = [f"dot-{i}-{uuid.uuid4().hex[:6]}" for i in range(threshold + 40)]
        await _push(ingest, headers, burst)

        went = await _news_goes_while_the_bulk_waits(ingest, province, burst, threshold)

        # The first items went as news; once the burst was seen, the rest waited for the
        # pipeline (the news already in flight leaves no room in the window).
        assert threshold <= went <= threshold + 2 * BULK_WINDOW, went
        await _all_follow_once_the_pipeline_drains(ingest, pipeline, province, burst)
