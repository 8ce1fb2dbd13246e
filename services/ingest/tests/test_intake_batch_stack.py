"""The intake use case on the real stack (PostgreSQL, S3, Kafka through the outbox): a partner
topic's batch taken as one, pushes of one article racing each other, and single pushes accepted
in groups."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry import context as otel_context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import ArticleAction, ArticleIngestedEvent, Channel, article_id_for
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest.db import outbox
from portal_ingest.intake_groups import PushGroups
from portal_ingest.intake_usecases import Ingestor, Receipt, Submission
from portal_ingest.usecases import RefusalKind, Refused, StorageUnavailable
from portal_runtime.storage import ObjectStore

from .conftest import Ingest, archived_original, read_events

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
    # Only the new revisions were archived (the repeat's bytes are the first one's), together:
    # one pack.
    assert len(store.keys) == 1 and store.keys[0].endswith(".pack")

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


# -- single pushes accepted in groups (intake_groups.py) ------------------------------------


class FailingStore(GatedStore):
    """The raw archive, where a write holding chosen bytes (alone or in a pack) fails."""

    def __init__(self, store: ObjectStore, failing: bytes) -> None:
        super().__init__(store)
        self.failing = failing

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.failing in data:
            raise ConnectionError("S3 did not answer")
        await super().put(key, data, content_type)


async def _push_all(
    groups: PushGroups, source: str, messages: list[PartnerArticleMessage]
) -> list[Receipt | BaseException]:
    """Each message pushed as its own request, all at once, each in a trace of its own."""

    async def push(message: PartnerArticleMessage, trace_id: int) -> Receipt:
        span = NonRecordingSpan(
            SpanContext(trace_id, 1, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        )
        token = otel_context.attach(set_span_in_context(span))
        try:
            raw = _submission(source, message).raw
            return await groups.submit(source, message, Channel.REST, raw)
        finally:
            otel_context.detach(token)

    tasks = [push(m, trace_id) for trace_id, m in enumerate(messages, start=0xA000)]
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _traces(ingest: Ingest, article_ids: set[str]) -> dict[str, str]:
    """The trace id each article's article.ingested record carries (its traceparent)."""
    consumer = AIOKafkaConsumer(
        ARTICLE_INGESTED.name,
        **ingest.kafka,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: dict[str, str] = {}
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < len(article_ids) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    subject = (record.key or b"").decode()
                    if subject in article_ids:
                        headers = dict(record.headers)
                        found[subject] = headers["traceparent"].decode().split("-")[1]
    finally:
        await consumer.stop()
    return found


async def test_grouped_pushes_are_each_answered_on_their_own(ingest: Ingest) -> None:
    """One group: new articles accepted (each event in its request's trace), a repeat answered
    as one, a refusal and a failed archive write answered to their own request only."""
    source, headers = await ingest.partner()
    tag = uuid.uuid4().hex[:8]
    earlier = _message(f"g-{tag}-earlier", "Tin đã nhận")
    failing = _message(f"g-{tag}-s3", "Tin không lưu được")
    store = FailingStore(
        ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket),
        _submission(source, failing).raw,
    )
    ingestor = _ingestor(ingest, store)
    await ingestor.submit(source, earlier, Channel.REST, _submission(source, earlier).raw)
    new = [_message(f"g-{tag}-{i}", f"Tin {i}") for i in range(3)]
    elsewhere = _message(f"g-{tag}-other", "Tin khác", section="khong-duoc-phep")
    # Six requests, one group: it starts when the sixth arrives.
    groups = PushGroups(ingestor, max_items=6, max_wait_s=5.0, in_flight=1)

    answers = await _push_all(groups, source, [*new, earlier, elsewhere, failing])

    assert [(a.revision, a.duplicate) for a in answers[:4] if isinstance(a, Receipt)] == [
        (1, False),
        (1, False),
        (1, False),
        (1, True),
    ]
    refused, unavailable = answers[4], answers[5]
    assert isinstance(refused, Refused) and refused.kind is RefusalKind.FORBIDDEN
    assert "khong-duoc-phep" in refused.reason
    assert isinstance(unavailable, StorageUnavailable)
    ids = {article_id_for(source, m.external_id) for m in new}
    traces = await _traces(ingest, ids)
    assert sorted(traces.values()) == [format(0xA000 + i, "032x") for i in range(3)]
    missing = await ingest.http.get(f"/v1/articles/{failing.external_id}", headers=headers)
    assert missing.status_code == 404


class GroupsFail(Ingestor):
    """An intake whose group transaction fails (as a statement one member makes fail would)."""

    async def submit_group(self, group: Sequence[Submission]) -> list[Any]:
        raise RuntimeError("the group's transaction failed")


async def test_when_a_group_fails_each_push_is_accepted_alone(ingest: Ingest) -> None:
    source, headers = await ingest.partner()
    tag = uuid.uuid4().hex[:8]
    messages = [_message(f"alone-{tag}-{i}", f"Tin {i}") for i in range(4)]
    ingestor = GroupsFail(
        ingest.app.state.service.sessions,
        ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket),
        outbox,
    )
    groups = PushGroups(ingestor, max_items=4, max_wait_s=5.0, in_flight=1)

    answers = await _push_all(groups, source, messages)

    assert [(a.revision, a.duplicate) for a in answers if isinstance(a, Receipt)] == [
        (1, False)
    ] * 4
    for message in messages:
        view = await ingest.http.get(f"/v1/articles/{message.external_id}", headers=headers)
        assert view.status_code == 200


# -- the raw archive's packs (raw_packs.py) ---------------------------------------------------


async def _in_one_transaction(
    ingest: Ingest, ingestor: Ingestor, batch: list[Submission], *, commit: bool = True
) -> list[Any]:
    sessions = ingest.app.state.service.sessions
    async with sessions() as session:
        transaction = await session.begin()

        async def in_transaction() -> AsyncSession:
            return session

        results = await ingestor.submit_batch(batch, in_transaction)
        await (transaction.commit() if commit else transaction.rollback())
    return results


async def test_a_batch_archives_one_pack_whose_ranges_give_back_each_original(
    ingest: Ingest,
) -> None:
    """Each article's original, byte for byte (Vietnamese text, bytes of every value), from its
    event's range of the batch's one object; a retried batch writes the same object again."""
    source, headers = await ingest.partner()
    uid = uuid.uuid4().hex[:8]
    messages = [_message(f"p{i}-{uid}", f"Tin số {i}: Đảng bộ tỉnh Hà Giang") for i in range(3)]
    originals = [
        json.dumps(messages[0].model_dump(mode="json"), ensure_ascii=False).encode(),
        bytes(range(256)) + uid.encode(),  # the bytes as received, whatever they are
        b"\xef\xbb\xbf" + messages[2].model_dump_json().encode() + b"\r\n",
    ]
    batch = [
        Submission(source, m, Channel.KAFKA, raw)
        for m, raw in zip(messages, originals, strict=True)
    ]
    store = GatedStore(ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket))
    ingestor = _ingestor(ingest, store)

    # The first attempt's transaction fails (rolled back): the batch comes again.
    await _in_one_transaction(ingest, ingestor, batch, commit=False)
    results = await _in_one_transaction(ingest, ingestor, batch)

    assert [(r.revision, r.duplicate) for r in results] == [(1, False)] * 3
    assert len(store.keys) == 2 and store.keys[0] == store.keys[1]  # the same pack, rewritten
    assert store.keys[0].startswith(f"raw/{source}/") and store.keys[0].endswith(".pack")
    events = await _events(ingest, {article_id_for(source, m.external_id) for m in messages}, 3)
    by_id = {e.data.external_id: e.data for e in events}
    for message, original in zip(messages, originals, strict=True):
        data = by_id[message.external_id]
        assert data.raw_object_key == store.keys[0]
        assert data.raw_byte_range is not None
        assert await archived_original(store.store, data) == original
    view = await ingest.http.get(f"/v1/articles/{messages[1].external_id}", headers=headers)
    assert view.status_code == 200


async def test_a_pushed_article_alone_keeps_an_object_of_its_own(ingest: Ingest) -> None:
    source, _ = await ingest.partner()
    message = _message(f"one-{uuid.uuid4().hex[:8]}", "Một bài")
    raw = '  {"external_id": "x", "ghi chú": "nguyên văn"}  '.encode()
    store = GatedStore(ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket))

    receipt = await _ingestor(ingest, store).submit(source, message, Channel.REST, raw)

    [event] = await _events(ingest, {receipt.article_id}, want=1)
    assert event.data.raw_byte_range is None
    assert event.data.raw_object_key == store.keys[0] and store.keys[0].endswith(".json")
    assert await archived_original(store.store, event.data) == raw


async def test_grouped_pushes_archive_one_pack_each_original_in_its_range(
    ingest: Ingest,
) -> None:
    source, _ = await ingest.partner()
    tag = uuid.uuid4().hex[:8]
    messages = [_message(f"gp-{tag}-{i}", f"Tin nhóm {i}: Mặt trận Tổ quốc") for i in range(4)]
    store = GatedStore(ObjectStore(ingest.settings, bucket=ingest.settings.s3_raw_bucket))
    groups = PushGroups(_ingestor(ingest, store), max_items=4, max_wait_s=5.0, in_flight=1)

    answers = await _push_all(groups, source, messages)

    assert all(isinstance(a, Receipt) and not a.duplicate for a in answers), answers
    assert len(store.keys) == 1 and store.keys[0].endswith(".pack")
    events = await _events(ingest, {article_id_for(source, m.external_id) for m in messages}, 4)
    by_id = {e.data.external_id: e.data for e in events}
    for message in messages:
        original = _submission(source, message).raw
        assert await archived_original(store.store, by_id[message.external_id]) == original
