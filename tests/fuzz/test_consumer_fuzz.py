"""Every Kafka consumer fed hostile messages (hypothesis), then one valid event.

Per topic, a burst of generated bad messages (random bytes, text that is not JSON, JSON that is
not an object, valid JSON with wrong types, missing fields, another topic's event, values over
the contract's limits) all share one key, so they land on one partition ahead of a valid event
with the same key. Every consumer group of the topic must put each bad message in the topic's
dead-letter topic, with a reason and the original bytes, and must then process the valid event:
a consumer never dies on bad input and never lets it block the partition.

Which messages count as bad is decided by the contract itself (``portal_contracts.codec``): a
generated message the contract accepts is discarded, one that crashes the decoder is a bug.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from annotated_types import MaxLen
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalized,
    ArticleNormalizedEvent,
    ArticlePublished,
    ArticlePublishedEvent,
    ArticleReviewed,
    ArticleReviewedEvent,
    Channel,
    NormalizedArticle,
    PublishedState,
    QualityReport,
    ReviewDecision,
)
from portal_contracts.codec import DecodeError, decode, encode
from portal_contracts.envelope import Envelope
from portal_contracts.questions import (
    QuestionAnswered,
    QuestionAnsweredEvent,
    QuestionSubmitted,
    QuestionSubmittedEvent,
)
from portal_contracts.submissions import (
    ReportReason,
    SubmissionKind,
    SubmissionModerated,
    SubmissionModeratedEvent,
    SubmissionReported,
    SubmissionReportedEvent,
    SubmissionState,
    SubmissionSubmitted,
    SubmissionSubmittedEvent,
)
from portal_contracts.topics import EVENT_TOPICS, MAX_MESSAGE_BYTES, TopicSpec
from portal_launcher.components.kafka import admin_client_options
from tests.fuzz.conftest import DEAD_LETTERS, FUZZ_MESSAGES, FUZZ_SEED, MESSAGES, FuzzPortal

SOURCE = "van-phong-trung-uong"  # a seeded source: valid events must pass domain rules too

# Consumer groups of each consuming service (ingest's one group follows the four article topics
# for the partner status and the article journey).
GROUPS = {
    "ingest": ("ingest",),
    "normalize": ("normalize",),
    "moderation": ("moderation",),
    "publishing": ("publishing",),
    "search": ("search",),
    "engagement": ("engagement",),
}
# Dead-letter classes that mean "not processed": decoding, contract, or a handler crash.
UNPROCESSED = {"decode", "schema", "validation", "size", "processing"}


# A service's consumer groups of one topic, where they are not its groups in GROUPS: publishing
# consumes article.published in its edge purger (python -m portal_publishing.purger).
TOPIC_GROUPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("publishing", "article.published"): ("publishing-edge-purger",),
}


def groups_of(spec: TopicSpec) -> list[str]:
    return [
        g
        for consumer in spec.consumers
        for g in TOPIC_GROUPS.get((consumer, spec.name), GROUPS[consumer])
    ]


def _article(title: str) -> NormalizedArticle:
    return NormalizedArticle(
        title=title,
        summary="Tóm tắt bài viết kiểm thử.",
        body_html="<p>Nội dung bài viết kiểm thử.</p>",
        body_text="Nội dung bài viết kiểm thử.",
    )


def valid_event(spec: TopicSpec, key: str) -> Envelope:
    """A valid event of ``spec`` about ``key``, which every consumer of the topic accepts."""
    now = datetime.now(UTC)
    title = f"Bài kiểm thử {key[:8]}"
    if spec.name == "article.ingested":
        return ArticleIngestedEvent(
            producer="ingest",
            subject=key,
            data=ArticleIngested(
                article_id=key,
                source=SOURCE,
                external_id=f"fuzz-{key}",
                revision=1,
                action=ArticleAction.UPSERT,
                channel=Channel.REST,
                received_at=now,
                content=ArticleContent(title=title, body_html="<p>Nội dung kiểm thử.</p>"),
            ),
        )
    if spec.name == "article.normalized":
        return ArticleNormalizedEvent(
            producer="normalize",
            subject=key,
            data=ArticleNormalized(
                article_id=key,
                source=SOURCE,
                external_id=f"fuzz-{key}",
                revision=1,
                action=ArticleAction.UPSERT,
                received_at=now,
                article=_article(title),
                quality=QualityReport(score=1.0),
            ),
        )
    if spec.name == "article.reviewed":
        return ArticleReviewedEvent(
            producer="moderation",
            subject=key,
            data=ArticleReviewed(
                article_id=key,
                source=SOURCE,
                external_id=f"fuzz-{key}",
                revision=1,
                decision=ReviewDecision.APPROVED,
                reviewer="fuzz",
                reviewed_at=now,
                article=_article(title),
            ),
        )
    if spec.name == "article.published":
        return ArticlePublishedEvent(
            producer="publishing",
            subject=key,
            data=ArticlePublished(
                article_id=key,
                source=SOURCE,
                revision=1,
                state=PublishedState.PUBLISHED,
                slug=f"bai-kiem-thu-{key}",
                url_path=f"/bai-viet/bai-kiem-thu-{key}",
                published_at=now,
                updated_at=now,
                article=_article(title),
            ),
        )
    if spec.name == "question.submitted":
        return QuestionSubmittedEvent(
            producer="engagement",
            subject=key,
            data=QuestionSubmitted(
                question_id=key,
                topic="chung",
                title="Câu hỏi kiểm thử",
                body="Nội dung câu hỏi kiểm thử.",
                submitted_at=now,
            ),
        )
    if spec.name == "question.answered":
        return QuestionAnsweredEvent(
            producer="moderation",
            subject=key,
            data=QuestionAnswered(
                question_id=key,
                revision=1,
                topic="chung",
                title="Câu hỏi kiểm thử",
                question_body="Nội dung câu hỏi kiểm thử.",
                answer_html="<p>Trả lời kiểm thử.</p>",
                answered_by="van-phong-trung-uong",
                asked_at=now,
                answered_at=now,
            ),
        )
    if spec.name == "submission.submitted":
        return SubmissionSubmittedEvent(
            producer="engagement",
            subject=key,
            data=SubmissionSubmitted(
                submission_id=key,
                kind="comment",
                context_id=str(uuid.uuid4()),
                body="Bình luận kiểm thử.",
                submitted_at=now,
            ),
        )
    if spec.name == "submission.moderated":
        return SubmissionModeratedEvent(
            producer="moderation",
            subject=key,
            data=SubmissionModerated(
                submission_id=key,
                kind=SubmissionKind.COMMENT,
                revision=1,
                state=SubmissionState.ACCEPTED,
                moderated_at=now,
            ),
        )
    if spec.name == "submission.reported":
        return SubmissionReportedEvent(
            producer="engagement",
            subject=key,
            data=SubmissionReported(
                report_id=str(uuid.uuid4()),
                submission_id=key,
                kind="comment",
                reason=ReportReason.SPAM,
                reports=1,
                reported_at=now,
            ),
        )
    raise AssertionError(f"no valid event for {spec.name}")


# -- generated bad messages --------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.append((*prefix, k))
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.append((*prefix, i))
            found.extend(_paths(v, (*prefix, i)))
    return found


def _limits(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], int]]:
    """(path, max length) of the model's length-limited string fields, nested models included."""
    found: list[tuple[tuple[str, ...], int]] = []
    for name, info in model.model_fields.items():
        for meta in info.metadata:
            if isinstance(meta, MaxLen) and info.annotation in (str, str | None):
                found.append(((*prefix, name), meta.max_length))
        annotation = info.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found.extend(_limits(candidate, (*prefix, name)))
    return found


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    doc = json.loads(json.dumps(doc))
    target = doc
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


def _wrong_type(current: Any) -> st.SearchStrategy[Any]:
    if isinstance(current, dict):
        return st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5))
    if isinstance(current, list):
        return st.one_of(
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.integers()
        )
    return st.one_of(
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.lists(st.dictionaries(st.text(max_size=3), st.booleans(), max_size=1), max_size=2),
    )


def bad_messages(spec: TopicSpec, base: Envelope) -> st.SearchStrategy[bytes | None]:
    doc = json.loads(encode(base))
    paths = _paths(doc)
    # A field just over its limit, as long as the message still fits the broker's (a bigger one
    # cannot be produced at all: the broker is the guard there).
    limits = [
        (p, n)
        for p, n in _limits(spec.model)
        # "ạ" is six bytes as JSON writes it (\u1ea1)
        if _present(doc, p) and (n + 64) * 6 < MAX_MESSAGE_BYTES // 2
    ]
    others = [t for t in EVENT_TOPICS if t.name != spec.name]

    def wrong_type() -> st.SearchStrategy[bytes]:
        return st.sampled_from(paths).flatmap(
            lambda p: _wrong_type(_get(doc, p)).map(lambda v: json.dumps(_set(doc, p, v)).encode())
        )

    def missing() -> st.SearchStrategy[bytes]:
        return st.sampled_from(paths).map(lambda p: json.dumps(_set(doc, p, None, True)).encode())

    def oversized() -> st.SearchStrategy[bytes]:
        return st.sampled_from(limits).flatmap(
            lambda pn: st.integers(1, 64).map(
                lambda extra: json.dumps(_set(doc, pn[0], "ạ" * (pn[1] + extra))).encode()
            )
        )

    def other_event() -> st.SearchStrategy[bytes]:
        return st.sampled_from(others).map(lambda t: encode(valid_event(t, base.subject)))

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
    return st.one_of(
        st.none(),  # a tombstone
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        json_values.map(lambda v: json.dumps(v).encode()),
        # an object whose "type" is itself an object or a list
        json_values.map(lambda v: json.dumps({**doc, "type": [v]}).encode()),
        wrong_type(),
        missing(),
        oversized(),
        other_event(),
    )


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _present(doc: Any, path: tuple[Any, ...]) -> bool:
    try:
        _get(doc, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


def generate(spec: TopicSpec, base: Envelope) -> list[bytes | None]:
    """A fixed number of messages the contract refuses (seeded, reproducible)."""
    found: list[bytes | None] = []

    @settings(
        max_examples=FUZZ_MESSAGES,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(FUZZ_SEED)
    @given(value=bad_messages(spec, base))
    def collect(value: bytes | None) -> None:
        try:
            decode(value, expected=spec.model)
        except DecodeError:
            found.append(value)  # refused with a reason: a bad message, as wanted
        # anything else the decoder raises is a bug, and fails the test here

    collect()
    return found


# -- the test ----------------------------------------------------------------------------------


async def _dead_letters(
    kafka: dict[str, Any], topic: str, partition: int, offsets: set[int], groups: list[str]
) -> dict[tuple[str, int], dict[str, Any]]:
    """Dead letters of ``topic`` for ``offsets``, by (group, offset), once all have arrived."""
    want = {(g, o) for g in groups for o in offsets}
    found: dict[tuple[str, int], dict[str, Any]] = {}
    # Each bad message is dead-lettered once per group: one dead letter, the same bytes. The
    # relay delivers at least once (a produce that timed out is sent again, byte for byte, and
    # consumers drop the repeat by its event id); a second dead-lettering would be a new event.
    seen: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    consumer = AIOKafkaConsumer(
        f"{topic}.dlq",
        **kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and not want <= found.keys():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    letter = json.loads(record.value)["data"]
                    if (
                        letter["original_topic"] == topic
                        and letter["original_partition"] == partition
                        and letter["original_offset"] in offsets
                    ):
                        at = (letter["consumer_group"], letter["original_offset"])
                        found[at] = letter
                        seen[at].add(record.value)
    finally:
        await consumer.stop()
    missing = sorted(want - found.keys())
    assert not missing, f"{topic}: no dead letter for (group, offset) {missing[:20]}"
    twice = sorted(at for at, letters in seen.items() if len(letters) > 1)
    assert not twice, f"{topic}: dead-lettered more than once (group, offset) {twice[:20]}"
    return found


async def _committed_past(
    kafka: dict[str, Any], groups: list[str], tp: TopicPartition, offset: int
) -> None:
    """Wait until every group has committed past ``offset``: it processed the valid event."""
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    deadline = time.monotonic() + 180
    try:
        pending = set(groups)
        while pending and time.monotonic() < deadline:
            for group in sorted(pending):
                committed = await admin.list_consumer_group_offsets(group, partitions=[tp])
                meta = committed.get(tp)
                if meta is not None and meta.offset > offset:
                    pending.discard(group)
            if pending:
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
    assert not pending, f"{tp.topic}: groups {sorted(pending)} never got past offset {offset}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("spec", [t for t in EVENT_TOPICS if t.consumers], ids=lambda t: t.name)
async def test_consumer_survives_hostile_messages(spec: TopicSpec, fuzz_portal: FuzzPortal) -> None:
    kafka = admin_client_options(fuzz_portal.settings)
    key = str(uuid.uuid4())
    good = valid_event(spec, key)
    bad = generate(spec, good)
    assert bad, "the generator made no bad message"
    groups = groups_of(spec)

    producer = AIOKafkaProducer(**kafka, acks="all", max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        offsets: dict[int, bytes | None] = {}
        partition = None
        for value in bad:
            meta = await producer.send_and_wait(spec.name, value, key=key.encode())
            offsets[meta.offset] = value
            partition = meta.partition
        valid = await producer.send_and_wait(spec.name, encode(good), key=key.encode())
    finally:
        await producer.stop()
    assert valid.partition == partition  # one key, one partition: the burst is ahead of it
    MESSAGES[spec.name] += len(bad) + 1

    assert partition is not None
    letters = await _dead_letters(kafka, spec.name, partition, set(offsets), groups)
    for (group, offset), letter in letters.items():
        assert letter["reason"], f"{group}: dead letter without a reason"
        sent = offsets[offset] or b""
        assert base64.b64decode(letter["original_value_b64"]) == sent, f"{group}: bytes changed"
        assert base64.b64decode(letter["original_key_b64"]) == key.encode()
    DEAD_LETTERS[spec.name] += len(letters)

    # The consumers are alive and past the burst: the valid event is processed, not refused.
    await _committed_past(kafka, groups, TopicPartition(spec.name, valid.partition), valid.offset)
    # A domain rule may still refuse it (engagement knows only questions it took itself), but
    # never as unreadable, invalid or crashing: that would mean the burst broke the consumer.
    refused = await _dead_letters_of(kafka, spec.name, partition, valid.offset)
    broken = [r for r in refused if r["error_type"] in UNPROCESSED]
    assert not broken, f"the valid event was refused as bad input: {broken}"


async def _dead_letters_of(
    kafka: dict[str, Any], topic: str, partition: int, offset: int
) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        f"{topic}.dlq",
        **kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        end = await consumer.end_offsets([TopicPartition(f"{topic}.dlq", 0)])
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    letter = json.loads(record.value)["data"]
                    if (
                        letter["original_topic"] == topic
                        and letter["original_partition"] == partition
                        and letter["original_offset"] == offset
                    ):
                        found.append(letter)
            tp = TopicPartition(f"{topic}.dlq", 0)
            if await consumer.position(tp) >= end[tp]:
                return found
    finally:
        await consumer.stop()
