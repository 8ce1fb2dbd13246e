"""Answered questions in search, on the real stack: question.answered in, /v1/questions out.

One app runs in-process for the module with its own questions alias; tests publish events to
the real broker with unique made-up words, so their hits are exact despite the shared stack.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from asgi_lifespan import LifespanManager
from opensearchpy import AsyncOpenSearch

from portal_contracts.codec import encode
from portal_contracts.questions import QuestionAnswered, QuestionAnsweredEvent
from portal_contracts.topics import QUESTION_ANSWERED
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_search.app import create_app

pytestmark = pytest.mark.stack

ALIAS = f"questions_test_{uuid.uuid4().hex[:6]}"


def word() -> str:
    return "".join(random.choice("bcdghklmnpqrstvx") + random.choice("aeiou") for _ in range(5))


class Client:
    def __init__(self, http: httpx.AsyncClient, producer: AIOKafkaProducer, admin: str) -> None:
        self.http = http
        self.producer = producer
        self.admin = {"Authorization": f"Bearer {admin}"}

    async def publish(self, event: QuestionAnsweredEvent) -> None:
        await self.producer.send_and_wait(
            QUESTION_ANSWERED.name, encode(event), key=event.subject.encode()
        )

    async def marker_after(self, qid: str) -> None:
        """Publish a made-up question on ``qid``'s partition and wait until it is found: every
        event for ``qid`` sent before it has been handled by then (one partition, one order)."""
        partitions = sorted(await self.producer.partitions_for(QUESTION_ANSWERED.name))
        partition = DefaultPartitioner()(qid.encode(), partitions, partitions)
        marker, w = str(uuid.uuid4()), word()
        await self.producer.send_and_wait(
            QUESTION_ANSWERED.name,
            encode(answered(marker, 1, w)),
            key=marker.encode(),
            partition=partition,
        )
        await self.until([marker], q=w)

    async def ids(self, **params: Any) -> list[str]:
        resp = await self.http.get("/v1/questions/search", params=params)
        assert resp.status_code == 200, resp.text
        return [h["question_id"] for h in resp.json()["hits"]]

    async def until(self, expected: list[str], timeout_s: float = 30.0, **params: Any) -> None:
        deadline = time.monotonic() + timeout_s
        found: list[str] = []
        while time.monotonic() < deadline:
            found = await self.ids(**params)
            if found == expected:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{params}: expected {expected}, found {found}")


@pytest.fixture(scope="module")
async def client(stack_settings: StackSettings) -> AsyncIterator[Client]:
    env = service_environment(stack_settings, "search")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("QUESTIONS_INDEX_ALIAS", ALIAS)
        app = create_app()
        producer = AIOKafkaProducer(**admin_client_options(stack_settings), acks="all")
        await producer.start()
        try:
            async with (
                LifespanManager(app, startup_timeout=180, shutdown_timeout=60),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://search", timeout=120
                ) as http,
            ):
                yield Client(http, producer, env["ADMIN_TOKEN"])
        finally:
            await producer.stop()
            async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url]) as os_client:
                await os_client.indices.delete(index=f"{ALIAS}-v*", ignore=[404])


def answered(
    qid: str, revision: int, text: str, *, state: str = "published", agency: str = "bo-y-te"
) -> QuestionAnsweredEvent:
    now = datetime.now(UTC)
    return QuestionAnsweredEvent(
        producer="moderation",
        subject=qid,
        data=QuestionAnswered(
            question_id=qid,
            revision=revision,
            state=state,  # type: ignore[arg-type]
            topic="y-te",
            agency=agency,
            title=f"Hỏi về thẻ bảo hiểm y tế {text}",
            question_body="Người cao tuổi có được cấp thẻ bảo hiểm y tế không?",
            answer_html=f"<p>Người từ đủ 80 tuổi được cấp thẻ &amp; miễn phí {text}.</p>",
            answered_by="Bộ Y tế",
            asked_at=now,
            answered_at=now,
        ),
    )


async def test_found_with_and_without_diacritics_and_filtered(client: Client) -> None:
    w = word()
    qid = str(uuid.uuid4())
    await client.publish(answered(qid, 1, w))
    await client.until([qid], q=w)
    # Up to three words, all must match: the made-up word keeps other tests' questions out.
    assert await client.ids(q=f"the bao {w}") == [qid]
    assert await client.ids(q=f"thẻ bảo {w}") == [qid]
    assert await client.ids(q=f"mien phi {w}") == [qid]  # in the answer
    assert await client.ids(q=w, agency="bo-tai-chinh") == []
    resp = await client.http.get("/v1/questions/search", params={"q": f"mien phi {w}"})
    hit = resp.json()["hits"][0]
    assert hit["path"] == f"/v1/qa/questions/{qid}"
    assert "<mark>" in "".join(hit["highlight"]["answer"])
    assert resp.json()["facets"]["agency"] == [{"key": "bo-y-te", "count": 1}]


async def test_older_revisions_never_win_and_withdrawal_removes(client: Client) -> None:
    w, w_old = word(), word()
    qid = str(uuid.uuid4())
    await client.publish(answered(qid, 3, w))
    await client.publish(answered(qid, 2, w_old))
    await client.until([qid], q=w)
    await client.marker_after(qid)  # the late revision 2 has been handled by now
    assert await client.ids(q=w_old) == []
    assert await client.ids(q=w) == [qid]
    await client.publish(answered(qid, 4, w, state="withdrawn"))
    await client.until([], q=w)


async def test_reindex_rebuilds_from_the_log(client: Client) -> None:
    w = word()
    qid = str(uuid.uuid4())
    await client.publish(answered(qid, 1, w))
    await client.until([qid], q=w)
    resp = await client.http.post("/admin/v1/questions/reindex", headers=client.admin)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["index"].startswith(f"{ALIAS}-v") and body["replayed"] >= 1
    assert await client.ids(q=w) == [qid]
    assert (await client.http.post("/admin/v1/questions/reindex")).status_code == 401


async def test_bad_filters_are_refused_naming_the_field(client: Client) -> None:
    resp = await client.http.get("/v1/questions/search", params={"topic": "Not A Code"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", "topic"]
