"""The engagement service on the real stack: its events out, moderation's events in.

One app runs in-process for the module (its consumers join group "engagement"); the tests
produce moderation's events to the real broker and read engagement's own events back from the
topics. Every test uses its own ids.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    NormalizedArticle,
    PublishedState,
)
from portal_contracts.codec import decode, encode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.questions import QuestionAnswered, QuestionAnsweredEvent
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionModerated,
    SubmissionModeratedEvent,
    SubmissionState,
)
from portal_contracts.topics import (
    ARTICLE_PUBLISHED,
    QUESTION_ANSWERED,
    QUESTION_SUBMITTED,
    SUBMISSION_MODERATED,
    SUBMISSION_SUBMITTED,
)
from portal_engagement.app import create_app
from portal_launcher.components.kafka import admin_client_options as kafka_admin
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_runtime.telemetry import setup_tracing

pytestmark = pytest.mark.stack

T = TypeVar("T")
BODY = "Tôi xin hỏi về thủ tục cấp giấy chứng nhận quyền sử dụng đất lần đầu như thế nào?"


@dataclass
class Stack:
    app: Any
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    kafka: dict[str, Any]  # the stack's operator
    admin: dict[str, str]

    async def publish(self, topic: str, event: Envelope) -> None:
        await self.producer.send_and_wait(topic, encode(event), key=event.subject.encode())

    async def read(
        self, topic: str, key: str, count: int = 1, timeout_s: float = 30.0
    ) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            **self.kafka,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and len(found) < count:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found += [r.value for r in records if r.key == key.encode() and r.value]
        finally:
            await consumer.stop()
        return found


async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout_s: float = 30.0) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
async def stack(stack_settings: StackSettings) -> AsyncIterator[Stack]:
    env = service_environment(stack_settings, "engagement")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        # In-process requests all come from one address: lift the limits this module does not test.
        mp.setenv("RATE_LIMIT_SUBMIT_PER_IP", "")
        mp.setenv("RATE_LIMIT_READ_PER_IP", "")
        app = create_app()
        producer = AIOKafkaProducer(**kafka_admin(stack_settings), acks="all")
        await producer.start()
        try:
            async with (
                LifespanManager(app, startup_timeout=180, shutdown_timeout=60),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://engagement", timeout=60
                ) as http,
            ):
                yield Stack(
                    app,
                    http,
                    producer,
                    kafka_admin(stack_settings),
                    {"Authorization": f"Bearer {env['ADMIN_TOKEN']}"},
                )
        finally:
            await producer.stop()


async def _ask(stack: Stack, **extra: Any) -> dict[str, Any]:
    resp = await stack.http.post(
        "/v1/qa/questions",
        json={"topic": "dat-dai-nha-o", "title": "Cấp sổ đỏ lần đầu", "body": BODY, **extra},
    )
    assert resp.status_code == 202, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _step(
    question_id: str, revision: int, state: SubmissionState, **kw: Any
) -> SubmissionModeratedEvent:
    return SubmissionModeratedEvent(
        producer="moderation",
        subject=question_id,
        data=SubmissionModerated(
            submission_id=question_id,
            kind=SubmissionKind.QA,
            revision=revision,
            state=state,
            moderated_at=datetime.now(UTC),
            **kw,
        ),
    )


def _answer(question_id: str, revision: int, state: str = "published") -> QuestionAnsweredEvent:
    now = datetime.now(UTC)
    return QuestionAnsweredEvent(
        producer="moderation",
        subject=question_id,
        data=QuestionAnswered(
            question_id=question_id,
            revision=revision,
            state=state,  # type: ignore[arg-type]
            topic="dat-dai-nha-o",
            agency="bo-tai-nguyen-moi-truong",
            title="Cấp sổ đỏ lần đầu",
            question_body=BODY,
            answer_html=f"<p>Trả lời lần {revision}.</p>",
            answered_by="Bộ Tài nguyên và Môi trường",
            asked_at=now,
            answered_at=now,
        ),
    )


async def test_an_idempotency_key_replayed_with_other_content_is_refused(stack: Stack) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    form = {
        "topic": "dat-dai-nha-o",
        "title": "Cấp sổ đỏ lần đầu",
        "body": BODY,
        "email": f"nguoi-{uuid.uuid4().hex[:8]}@example.vn",
    }
    first = await stack.http.post("/v1/qa/questions", json=form, headers=key)
    assert first.status_code == 202, first.text
    # The same request again (a retry): the same submission, a fresh link.
    retry = await stack.http.post("/v1/qa/questions", json=form, headers=key)
    assert retry.status_code == 202, retry.text
    assert retry.json()["id"] == first.json()["id"] and retry.json()["repeated"] is True
    # The key with another text, or the same text from someone else: 409, nothing of the first.
    other_text = {**form, "body": BODY + " Xin cảm ơn."}
    other_person = {**form, "email": "nguoi-khac@example.vn"}
    for replay in (other_text, other_person):
        resp = await stack.http.post("/v1/qa/questions", json=replay, headers=key)
        assert resp.status_code == 409, resp.text
        assert "Idempotency-Key" in resp.json()["detail"]
        for secret in (first.json()["id"], first.json()["reference"]):
            assert secret not in resp.text


async def test_the_status_link_token_never_reaches_a_span(stack: Stack) -> None:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    setup_tracing("engagement", extra_processors=(processor,))  # the app's own provider
    try:
        receipt = await _ask(stack)
        token = receipt["status_token"]
        resp = await stack.http.get(receipt["status_path"])
        assert resp.status_code == 200 and resp.json()["reference"] == receipt["reference"]
    finally:
        processor.shutdown()
    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    status_spans = [
        s for s in spans if (s.attributes or {}).get("http.route") == "/v1/status/{token}"
    ]
    assert status_spans, [s.name for s in spans]
    for span in exporter.get_finished_spans():
        assert token not in span.name
        assert token not in repr(dict(span.attributes or {})), span.name


async def test_the_submitted_event_carries_no_contact_details(stack: Stack) -> None:
    receipt = await _ask(
        stack, email="rieng.tu@example.vn", phone="0912 000 111", display_name="Lan"
    )
    [raw] = await stack.read(QUESTION_SUBMITTED.name, receipt["id"])
    assert b"rieng.tu" not in raw and b"0912000111" not in raw and b"912000111" not in raw
    event = decode(raw)
    assert event.data.reference == receipt["reference"]  # type: ignore[attr-defined]
    assert event.data.asker_display_name == "Lan"  # type: ignore[attr-defined]
    # The contact is kept, apart, for the officials (admin API only).
    contact = await stack.http.get(
        f"/admin/v1/submissions/{receipt['id']}/contact", headers=stack.admin
    )
    assert (
        contact.json()["email"] == "rieng.tu@example.vn"
        and contact.json()["phone"] == "+84912000111"
    )


async def test_steps_are_applied_once_and_older_ones_ignored(stack: Stack, processed: Any) -> None:
    receipt = await _ask(stack)
    qid = receipt["id"]
    accepted = _step(qid, 1, SubmissionState.ACCEPTED)
    late = _step(qid, 2, SubmissionState.REJECTED, reason="x")
    await stack.publish(SUBMISSION_MODERATED.name, accepted)
    await stack.publish(SUBMISSION_MODERATED.name, accepted)  # redelivered: same event id
    await stack.publish(
        SUBMISSION_MODERATED.name, _step(qid, 3, SubmissionState.ROUTED, agency="bo-y-te")
    )
    await stack.publish(SUBMISSION_MODERATED.name, late)

    async def steps() -> list[str]:
        body = (await stack.http.get(receipt["status_path"])).json()
        return [s["state"] for s in body["steps"]]

    await eventually(lambda: _has(steps, "routed"), "routed step")
    await processed(stack.app, late.event_id)  # the late, older step: it changed nothing
    assert await steps() == ["received", "accepted", "routed"]
    status = (await stack.http.get(receipt["status_path"])).json()
    assert status["state"] == "routed" and status["about"]["agency"] == "bo-y-te"


async def _has(get: Callable[[], Awaitable[list[str]]], value: str) -> bool:
    return value in await get()


async def test_an_answer_publishes_and_a_late_older_answer_never_overwrites(
    stack: Stack, processed: Any
) -> None:
    qid = (await _ask(stack))["id"]
    late = _answer(qid, 4)
    await stack.publish(QUESTION_ANSWERED.name, _answer(qid, 5))
    await stack.publish(QUESTION_ANSWERED.name, late)

    async def public() -> dict[str, Any] | None:
        resp = await stack.http.get(f"/v1/qa/questions/{qid}")
        return resp.json() if resp.status_code == 200 else None

    page = await eventually(public, "public answer")
    await processed(stack.app, late.event_id)
    page = await public()
    assert page is not None and page["answer_html"] == "<p>Trả lời lần 5.</p>"
    # A withdrawal hides it.
    await stack.publish(QUESTION_ANSWERED.name, _answer(qid, 6, state="withdrawn"))
    await eventually(lambda: _gone(stack, qid), "withdrawn")


async def _gone(stack: Stack, qid: str) -> bool:
    return (await stack.http.get(f"/v1/qa/questions/{qid}")).status_code == 404


async def test_an_answer_to_an_unknown_question_is_dead_lettered(stack: Stack) -> None:
    ghost = str(uuid.uuid4())
    await stack.publish(QUESTION_ANSWERED.name, _answer(ghost, 1))
    letters = await _dead_letters(stack, ghost)
    assert letters and "no question" in letters[0].data.reason


async def _dead_letters(stack: Stack, question_id: str) -> list[DeadLetterEvent]:
    consumer = AIOKafkaConsumer(
        QUESTION_ANSWERED.dead_letter_topic,
        **stack.kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[DeadLetterEvent] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not found:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    event = decode(record.value)
                    if (
                        isinstance(event, DeadLetterEvent)
                        and event.data.consumer_group == "engagement"
                        and question_id.encode() in event.data.original_value()
                    ):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


def _article(article_id: str, revision: int, state: PublishedState) -> ArticlePublishedEvent:
    now = datetime.now(UTC)
    return ArticlePublishedEvent(
        producer="publishing",
        subject=article_id,
        data=ArticlePublished(
            article_id=article_id,
            source="bao-nhan-dan",
            revision=revision,
            state=state,
            slug=f"bai-{article_id[:8]}",
            url_path=f"/bai-viet/bai-{article_id[:8]}",
            published_at=now,
            updated_at=now,
            article=NormalizedArticle(
                title="Tin hoạt động", summary="", body_html="<p>x</p>", body_text="x"
            )
            if state is PublishedState.PUBLISHED
            else None,
        ),
    )


async def test_comments_follow_the_article_public_state(stack: Stack) -> None:
    article_id = str(uuid.uuid4())

    async def comment() -> httpx.Response:
        return await stack.http.post(
            f"/v1/articles/{article_id}/comments", json={"body": "Bài viết rất hay, cảm ơn."}
        )

    async def accepted() -> httpx.Response | None:
        resp = await comment()
        return resp if resp.status_code == 202 else None

    async def refused() -> bool:
        return (await comment()).status_code == 404

    assert await refused()
    await stack.publish(ARTICLE_PUBLISHED.name, _article(article_id, 1, PublishedState.PUBLISHED))
    receipt = (await eventually(accepted, "comments open")).json()
    [raw] = await stack.read(SUBMISSION_SUBMITTED.name, receipt["id"])
    event = decode(raw)
    assert event.data.kind == "comment" and event.data.context_id == article_id  # type: ignore[attr-defined]
    assert event.data.context_title == "Tin hoạt động"  # type: ignore[attr-defined]

    await stack.publish(ARTICLE_PUBLISHED.name, _article(article_id, 2, PublishedState.RETRACTED))
    await eventually(refused, "comments closed on a retracted article")
    assert (await stack.http.get(f"/v1/articles/{article_id}/comments")).status_code == 404


async def test_comments_are_screened_like_every_submission(stack: Stack) -> None:
    article_id = str(uuid.uuid4())
    path = f"/v1/articles/{article_id}/comments"

    async def post(body: str, **extra: Any) -> httpx.Response:
        return await stack.http.post(path, json={"body": body, **extra})

    async def open_for_comments() -> bool:
        return (await stack.http.get(path)).status_code == 200

    await stack.publish(ARTICLE_PUBLISHED.name, _article(article_id, 1, PublishedState.PUBLISHED))
    await eventually(open_for_comments, "comments open")

    # Vietnamese with diacritics goes through, held for nobody.
    fine = await post("Bài viết rất thiết thực, cảm ơn tác giả.")
    assert fine.status_code == 202, fine.text
    assert fine.json()["held_for_review"] is False and fine.json()["kind"] == "comment"

    # Without diacritics, or too short: refused, naming the field and why.
    bare = await post("Bai viet rat hay, cam on tac gia nhieu lam.")
    assert bare.status_code == 422
    [problem] = bare.json()["detail"]
    assert problem["loc"] == ["body", "body"] and "diacritics" in problem["msg"]
    short = await post("Ừ")
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "body"]

    # A banned word or a link: received, but held until an editor looks; a suspect word only
    # flags it. The flags travel to the desk with the comment.
    banned = await post("Viết cái đéo gì thế này, chán quá.")
    link = await post("Xem thêm bài này tại https://tin-gia.example.com nhé.")
    suspect = await post("Bài này nói về các thế lực phản động, rất cần thiết.")
    for resp, held in ((banned, True), (link, True), (suspect, False)):
        assert resp.status_code == 202, resp.text
        assert resp.json()["held_for_review"] is held
    for resp, flag in ((banned, "banned_word:"), (link, "link:"), (suspect, "suspect_word:")):
        [raw] = await stack.read(SUBMISSION_SUBMITTED.name, resp.json()["id"])
        flags = decode(raw).data.screening_flags  # type: ignore[attr-defined]
        assert any(f.startswith(flag) for f in flags), flags

    # The spam trap: answered like any receipt, stored nowhere (a stored comment's status link
    # works as soon as its receipt is out, as the first one's does).
    assert (await stack.http.get(fine.json()["status_path"])).status_code == 200
    trap = await post("Bài viết rất thiết thực, cảm ơn tác giả.", website="http://spam")
    assert trap.status_code == 202
    assert (await stack.http.get(trap.json()["status_path"])).status_code == 404


async def test_nul_in_text_and_an_unreadable_body_are_422_naming_the_field(stack: Stack) -> None:
    # Regression: NUL reached PostgreSQL (500) and a body that is not UTF-8 was an undocumented
    # 400; both are 422s in the documented shape, and nothing is stored.
    code = f"nul-{uuid.uuid4().hex[:8]}"
    nul = await stack.http.put(
        f"/admin/v1/forum-topics/{code}",
        json={"name": "Chủ đề", "description": "mô tả\x00"},
        headers=stack.admin,
    )
    assert nul.status_code == 422, nul.text
    assert [p["loc"] for p in nul.json()["detail"]] == [["body", "description"]]
    listed = await stack.http.get("/admin/v1/forum-topics", headers=stack.admin)
    assert code not in {t["code"] for t in listed.json()}
    unreadable = await stack.http.post(
        "/v1/qa/questions",
        content=b'{"body": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert unreadable.status_code == 422, unreadable.text
    assert unreadable.json()["detail"][0]["type"] == "json_invalid"
