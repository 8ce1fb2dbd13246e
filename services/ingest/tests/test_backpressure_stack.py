"""Backpressure of the partner API against the real stack: a partner that floods gets 429 with
Retry-After while other partners are served; beyond the in-flight cap requests are shed at once
(503 with Retry-After) instead of queueing. Each test runs its own ingest app with tiny limits
(the settings SREs would set), next to nothing else."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from portal_ingest.app import create_app
from portal_ingest.db import articles
from portal_ingest.settings import Settings

from .conftest import Ingest

pytestmark = pytest.mark.stack


def _article() -> bytes:
    return json.dumps(
        {
            "content": {
                "title": "Hội nghị Ban Chấp hành Đảng bộ tỉnh",
                "summary": "Tóm tắt bài viết.",
                "body_html": "<p>Nội dung bài viết về công tác xây dựng Đảng.</p>",
                "section": "ct-xay-dung-dang",
            }
        }
    ).encode()


async def _push(ingest: Ingest, external_id: str, headers: dict[str, str]) -> httpx.Response:
    return await ingest.http.put(
        f"/v1/articles/{external_id}",
        content=_article(),
        headers={**headers, "Content-Type": "application/json"},
    )


async def _stored(ingest: Ingest, external_ids: list[str]) -> set[str]:
    """Which of ``external_ids`` ingest stored."""
    async with ingest.app.state.service.sessions() as session:
        rows = await session.execute(
            select(articles.c.external_id).where(articles.c.external_id.in_(external_ids))
        )
        return {row.external_id for row in rows}


async def _running(settings: Settings, **limits: Any) -> AsyncIterator[Ingest]:
    tuned = settings.model_copy(update=limits)
    app = create_app(tuned)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield Ingest(tuned, http, app)


@pytest.fixture
async def limited(ingest_settings: Settings) -> AsyncIterator[Ingest]:
    async for running in _running(
        ingest_settings, rate_limit_per_api_key="5/minute", rate_limit_per_ip=""
    ):
        yield running


@pytest.fixture
async def capped(ingest_settings: Settings) -> AsyncIterator[Ingest]:
    async for running in _running(
        ingest_settings,
        rate_limit_per_api_key="",
        rate_limit_per_ip="",
        max_in_flight_requests=2,
        overload_retry_after_s=2,
    ):
        yield running


async def test_a_flooding_partner_gets_429_while_another_partner_is_served(
    limited: Ingest,
) -> None:
    flooder, flood_headers = await limited.partner()
    _, other_headers = await limited.partner()

    served = [await limited.http.get("/v1/articles", headers=flood_headers) for _ in range(5)]
    assert [r.status_code for r in served] == [200] * 5
    flood_id, other_id = f"flood-{uuid.uuid4().hex[:8]}", f"ok-{uuid.uuid4().hex[:8]}"
    refused = await _push(limited, flood_id, flood_headers)
    assert refused.status_code == 429, refused.text
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    body = refused.json()
    assert body["reason"] == "rate_limited" and body["scope"] == "api_key"
    assert body["retry_after_s"] == retry_after and "API key" in body["detail"]

    # The other agency, from the same address, is still served, pushes included.
    assert (await limited.http.get("/v1/articles", headers=other_headers)).status_code == 200
    pushed = await _push(limited, other_id, other_headers)
    assert pushed.status_code == 202, pushed.text

    # What was accepted is stored; the refused push left nothing behind.
    kept = await _stored(limited, [other_id, flood_id])
    assert other_id in kept
    assert flood_id not in kept

    # Operators are never limited.
    listed = await limited.http.get(
        f"/admin/v1/sources/{flooder}/api-keys", headers=limited.admin_headers
    )
    assert listed.status_code == 200
    assert (await limited.http.get("/healthz")).status_code == 200


async def test_beyond_the_in_flight_cap_requests_are_shed_at_once(capped: Ingest) -> None:
    _, headers = await capped.partner()
    started = [asyncio.Event(), asyncio.Event()]
    release = asyncio.Event()
    raw = _article()

    def slow_body(started_one: asyncio.Event) -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            yield raw[:10]
            # The app asked for more of the body: it is handling this request now.
            started_one.set()
            await release.wait()
            yield raw[10:]

        return chunks()

    slow = [
        asyncio.create_task(
            capped.http.put(
                f"/v1/articles/slow-{i}-{uuid.uuid4().hex[:8]}",
                content=slow_body(started[i]),
                headers={**headers, "Content-Type": "application/json"},
            )
        )
        for i in range(2)
    ]
    try:
        await asyncio.gather(*(e.wait() for e in started))

        shed = await capped.http.get("/v1/articles", headers=headers)
        assert shed.status_code == 503, shed.text
        assert shed.headers["Retry-After"] == "2"
        assert shed.json()["reason"] == "overloaded"
        # Liveness and the operators' API still answer while the partner API is saturated.
        assert (await capped.http.get("/healthz")).status_code == 200
        admin = await capped.http.get("/admin/v1/sources", headers=capped.admin_headers)
        assert admin.status_code == 200
    finally:
        release.set()
    # The requests in progress were not hurt, and once they end the API serves again.
    assert [(await t).status_code for t in slow] == [202, 202]
    assert (await capped.http.get("/v1/articles", headers=headers)).status_code == 200


async def test_each_item_of_a_batch_push_counts_against_the_api_key_s_rate_limit(
    limited: Ingest,
) -> None:
    _, headers = await limited.partner()
    tag = uuid.uuid4().hex[:8]
    article = json.loads(_article())

    def batch(*ids: str) -> dict[str, Any]:
        return {"items": [{"external_id": i, **article} for i in ids]}

    # Five pushes a minute: a batch of three uses three of them...
    first = await limited.http.post(
        "/v1/articles/batch", json=batch(f"b-{tag}-1", f"b-{tag}-2", f"b-{tag}-3"), headers=headers
    )
    assert first.status_code == 200, first.text
    assert [x["status"] for x in first.json()["items"]] == [202, 202, 202]

    # ...so three more are refused whole, told when to retry, and nothing of them is stored.
    over = await limited.http.post(
        "/v1/articles/batch", json=batch(f"b-{tag}-4", f"b-{tag}-5", f"b-{tag}-6"), headers=headers
    )
    assert over.status_code == 429, over.text
    body = over.json()
    assert body["reason"] == "rate_limited" and body["scope"] == "api_key"
    assert 1 <= int(over.headers["Retry-After"]) <= 60

    # The refused batch counted as one request, not four: the fifth push of the minute is served.
    fifth = await _push(limited, f"b-{tag}-7", headers)
    assert fifth.status_code == 202, fifth.text

    kept = await _stored(limited, [f"b-{tag}-{n}" for n in range(1, 8)])
    assert sorted(kept) == [f"b-{tag}-1", f"b-{tag}-2", f"b-{tag}-3", f"b-{tag}-7"]
