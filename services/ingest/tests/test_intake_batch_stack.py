"""The intake use case on the real stack (PostgreSQL, S3, Kafka through the outbox): a partner
topic's batch taken as one, and pushes of one article racing each other."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import ArticleAction, ArticleIngestedEvent, Channel, article_id_for
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest.db import outbox
from portal_ingest.intake_usecases import Ingestor, Receipt, Submission
from portal_ingest.usecases import RefusalKind, Refused
from portal_runtime.storage import ObjectStore

from .conftest import Ingest, read_events

pytestmark = pytest.mark.stack

SECTION = "ct-xay-dung-dang"


def _message(
    external_id: str, title: str | None, section: str = SECTION, **extra: Any
) -> PartnerArticleMessage:
    content = None if title is None else {"title": title, "section": section}
    return PartnerArticleMessage.model_validate(
        {"external_id": external_id, "content": content, **extra}
    )


def _submission(source: str, message: PartnerArticleMessage) -> Submission:
    raw = message.model_dump_json(exclude_none=True).encode()
    return Submission(source, message, Channel.KAFKA, raw)


class GatedStore:
    """The raw archive, where the write of chosen bytes waits until the test lets it go."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.held: dict[bytes, asyncio.Event] = {}
        self.reached: dict[bytes, asyncio.Event] = {}
        self.keys: list[str] = []

    def hold(self, data: bytes) -> tuple[asyncio.Event, asyncio.Event]:
        self.held[data], self.reached[data] = asyncio.Event(), asyncio.Event()
        return self.reached[data], self.held[data]

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if data in self.held:
            self.reached[data].set()
            await self.held[data].wait()
        self.keys.append(key)
        await self.store.put(key, data, content_type)


def _ingestor(ingest: Ingest, store: Any) -> Ingestor:
    return Ingestor(ingest.app.state.service.sessions, store, outbox)


async def _events(ingest: Ingest, article_ids: set[str], want: int) -> list[ArticleIngestedEvent]:
    events = await read_events(
        ingest.kafka,
        ARTICLE_INGESTED.name,
        lambda e: isinstance(e, ArticleIngestedEvent) and e.subject in article_ids,
        want=want,
        settle_s=1.0,
    )
    return [e for e in events if isinstance(e, ArticleIngestedEvent)]


async def test_a_batch_is_decided_in_offset_order_and_stored_at_once(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    uid = uuid.uuid4().hex[:8]
    a, b, c, d = (f"{x}-{uid}" for x in "abcd")
    store = GatedStore(ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket))
    ingestor = _ingestor(ingest, store)
    batch = [
        _message(a, "Tin A"),
        _message(a, "Tin A"),  # a repeat of the member before it
        _message(b, "Tin B, bản 2", revision=2),
        _message(b, "Tin B, bản 1", revision=1),  # older than the batch's revision 2
        _message(c, "Tin C", section="tong-bi-thu"),  # a section the agency may not use
        PartnerArticleMessage(external_id=d, action=ArticleAction.RETRACT),  # never sent
        _message(a, "Tin A, sửa"),
    ]
    sessions = ingest.app.state.service.sessions
    async with sessions.begin() as session:

        async def in_transaction() -> AsyncSession:
            return session

        results = await ingestor.submit_batch(
            [_submission(source, m) for m in batch], in_transaction
        )

    answers = [(r.revision, r.duplicate) if isinstance(r, Receipt) else r.kind for r in results]
    assert answers == [
        (1, False),
        (1, True),
        (2, False),
        RefusalKind.STALE,
        RefusalKind.FORBIDDEN,
        RefusalKind.NOT_FOUND,
        (2, False),
    ]
    assert isinstance(results[4], Refused) and "tong-bi-thu" in results[4].reason
    # Only the new revisions were archived (the repeat's bytes are the first one's: one write).
    assert len(store.keys) == 3

    ids = {article_id_for(source, x) for x in (a, b)}
    events = await _events(ingest, ids, want=3)
    assert [(e.data.external_id, e.data.revision) for e in events if e.data.external_id == a] == [
        (a, 1),
        (a, 2),
    ]
    assert [(e.data.external_id, e.data.revision) for e in events if e.data.external_id == b] == [
        (b, 2)
    ]
    view = (await ingest.http.get(f"/v1/articles/{a}", headers=headers)).json()
    assert [r["revision"] for r in view["revisions"]] == [1, 2]
    assert [h["revision"] for h in view["history"]] == [1, 2]
    assert view["title"] == "Tin A, sửa"
    assert (await ingest.http.get(f"/v1/articles/{c}", headers=headers)).status_code == 404


async def test_a_push_that_lost_a_race_becomes_the_next_revision(ingest: Ingest) -> None:
    """Two pushes of one new article decide revision 1 at the same time; the one whose archive
    write finishes last finds the article taken, decides again under its lock: revision 2."""
    source, headers = await ingest.partner()
    external_id = f"race-{uuid.uuid4().hex[:8]}"
    store = GatedStore(ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket))
    ingestor = _ingestor(ingest, store)
    slow, fast = _message(external_id, "Bản chậm"), _message(external_id, "Bản nhanh")
    slow_sub = _submission(source, slow)
    reached, release = store.hold(slow_sub.raw)

    slow_push = asyncio.create_task(ingestor.submit(source, slow, Channel.REST, slow_sub.raw))
    await reached.wait()  # decided (revision 1), archiving
    first = await ingestor.submit(source, fast, Channel.REST, _submission(source, fast).raw)
    release.set()
    second = await slow_push

    assert (first.revision, first.duplicate) == (1, False)
    assert (second.revision, second.duplicate) == (2, False)
    article_id = article_id_for(source, external_id)
    events = await _events(ingest, {article_id}, want=2)
    assert sorted((e.data.revision, e.data.content.title) for e in events if e.data.content) == [
        (1, "Bản nhanh"),
        (2, "Bản chậm"),
    ]
    view = (await ingest.http.get(f"/v1/articles/{external_id}", headers=headers)).json()
    assert (view["revision"], view["title"]) == (2, "Bản chậm")


async def test_a_push_that_lost_a_race_to_the_same_content_is_a_repeat(ingest: Ingest) -> None:
    source, _ = await ingest.partner()
    external_id = f"race-{uuid.uuid4().hex[:8]}"
    store = GatedStore(ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket))
    ingestor = _ingestor(ingest, store)
    message = _message(external_id, "Cùng một bản")
    slow_raw = json.dumps(message.model_dump(mode="json"), indent=2).encode()  # other bytes
    reached, release = store.hold(slow_raw)

    slow_push = asyncio.create_task(ingestor.submit(source, message, Channel.REST, slow_raw))
    await reached.wait()
    first = await ingestor.submit(source, message, Channel.REST, _submission(source, message).raw)
    release.set()
    second = await slow_push

    assert (first.revision, first.duplicate) == (1, False)
    assert (second.revision, second.duplicate) == (1, True)
    events = await _events(ingest, {article_id_for(source, external_id)}, want=1)
    assert [e.data.revision for e in events] == [1]


async def test_concurrent_pushes_of_one_article_each_get_their_own_revision(
    ingest: Ingest,
) -> None:
    """Nothing doubled, nothing refused: each push its own revision, each revision one event."""
    source, headers = await ingest.partner()
    external_id = f"many-{uuid.uuid4().hex[:8]}"
    pushes = [
        ingest.http.put(
            f"/v1/articles/{external_id}",
            json={"content": {"title": f"Bản {i}", "section": SECTION}},
            headers=headers,
        )
        for i in range(8)
    ]
    answers = await asyncio.gather(*pushes)
    assert [r.status_code for r in answers] == [202] * 8, [r.text for r in answers]
    assert sorted(r.json()["revision"] for r in answers) == list(range(1, 9))
    view = (await ingest.http.get(f"/v1/articles/{external_id}", headers=headers)).json()
    assert [r["revision"] for r in view["revisions"]] == list(range(1, 9))
    events = await _events(ingest, {article_id_for(source, external_id)}, want=8)
    assert sorted(e.data.revision for e in events) == list(range(1, 9))
