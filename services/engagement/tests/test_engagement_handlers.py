"""Engagement's consumers (submission.moderated, question.answered, article.published) driven
as the batch consumer drives them, without Kafka or a database: the repository is an in-memory
fake, the rules are the real ones. The real broker and database: test_engagement_stack.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    NormalizedArticle,
    PublishedState,
)
from portal_contracts.questions import QuestionAnswered, QuestionAnsweredEvent
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionModerated,
    SubmissionModeratedEvent,
    SubmissionState,
)
from portal_contracts.topics import ARTICLE_PUBLISHED, QUESTION_ANSWERED, SUBMISSION_MODERATED
from portal_engagement import repository
from portal_engagement.handlers import subscriptions
from portal_engagement.usecases import Engagement
from portal_runtime.batch import Record
from portal_runtime.testing import Ledger, drive, record_for, records_for

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Store:
    """Engagement's tables as the consumers see them through ``repository``."""

    def __init__(self) -> None:
        self.submissions: dict[str, dict[str, Any]] = {}
        self.steps: list[dict[str, Any]] = []
        self.live: list[tuple[str, str, str, dict[str, Any]]] = []  # dialogue, id, event, payload
        self.articles: dict[str, dict[str, Any]] = {}

    def submit(self, id_: str, kind: SubmissionKind, *, dialogue: str | None = None) -> None:
        self.submissions[id_] = {
            "id": id_,
            "kind": kind.value,
            "state": "received",
            "moderation_revision": 0,
            "answer_revision": None,
            "public": False,
            "published_at": None,
            "routed_agency": None,
            "dialogue_code": dialogue,
            "body": "Xin hỏi về thủ tục cấp giấy phép?",
            "display_name": "Nguyễn Văn A",
            "email": "a@example.vn",
            "submitted_at": NOW,
        }

    async def lock_submission(self, session: Any, submission_id: str) -> dict[str, Any] | None:
        row = self.submissions.get(submission_id)
        return dict(row) if row is not None else None

    async def update_submission(
        self, session: Any, submission_id: str, values: dict[str, Any]
    ) -> None:
        self.submissions[submission_id].update(values)

    async def add_step(self, session: Any, values: dict[str, Any]) -> None:
        self.steps.append(values)

    async def add_dialogue_event(
        self, session: Any, code: str, submission_id: str, event: str, payload: dict[str, Any]
    ) -> None:
        self.live.append((code, submission_id, event, payload))

    async def upsert_articles(self, session: Any, rows: list[dict[str, Any]]) -> None:
        # One statement upserts at most one row per article (PostgreSQL's ON CONFLICT).
        assert len({r["article_id"] for r in rows}) == len(rows)
        for row in rows:
            kept = self.articles.get(row["article_id"])
            if kept is None or kept["revision"] < row["revision"]:
                self.articles[row["article_id"]] = row


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    for name in (
        "lock_submission",
        "update_submission",
        "add_step",
        "add_dialogue_event",
        "upsert_articles",
    ):
        monkeypatch.setattr(repository, name, getattr(fake, name))
    return fake


def moderated(
    submission_id: str,
    revision: int,
    state: SubmissionState,
    *,
    kind: SubmissionKind = SubmissionKind.FORUM_THREAD,
    reason: str | None = None,
    subject: str | None = None,
) -> SubmissionModeratedEvent:
    return SubmissionModeratedEvent(
        producer="moderation",
        subject=subject or submission_id,
        data=SubmissionModerated(
            submission_id=submission_id,
            kind=kind,
            revision=revision,
            state=state,
            reason=reason,
            moderated_at=NOW + timedelta(minutes=revision),
        ),
    )


def answered(
    question_id: str, revision: int, *, state: str = "published", kind: str = "qa"
) -> QuestionAnsweredEvent:
    return QuestionAnsweredEvent(
        producer="moderation",
        subject=question_id,
        data=QuestionAnswered.model_validate(
            {
                "question_id": question_id,
                "revision": revision,
                "state": state,
                "topic": "thu-tuc-hanh-chinh",
                "title": "Thủ tục cấp giấy phép",
                "question_body": "Xin hỏi về thủ tục cấp giấy phép?",
                "answer_html": "<p>Trả lời: nộp hồ sơ tại bộ phận một cửa.</p>",
                "answered_by": "Sở Nội vụ",
                "asked_at": NOW,
                "answered_at": NOW + timedelta(hours=revision),
                "kind": kind,
            }
        ),
    )


async def run(topic: str, records: list[Record], ledger: Ledger | None = None) -> Ledger:
    [subscription] = subscriptions(Engagement())  # one consumer for the group's topics
    assert topic in {t.name for t in subscription.topics}
    return await drive(subscription, records, ledger, session=object())


# --- submission.moderated -------------------------------------------------------------------


async def test_a_published_post_becomes_public_and_its_status_link_shows_the_step(
    store: Store,
) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    ledger = await run(
        SUBMISSION_MODERATED.name,
        [record_for(SUBMISSION_MODERATED.name, moderated("p-1", 1, SubmissionState.PUBLISHED))],
    )
    row = store.submissions["p-1"]
    assert (row["state"], row["public"], row["published_at"]) == (
        "published",
        True,
        NOW + timedelta(minutes=1),
    )
    assert [(s["submission_id"], s["state"]) for s in store.steps] == [("p-1", "published")]
    assert ledger.rejections == []


async def test_a_withdrawn_post_is_hidden_with_its_reason(store: Store) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    await run(
        SUBMISSION_MODERATED.name,
        records_for(
            SUBMISSION_MODERATED.name,
            moderated("p-1", 1, SubmissionState.PUBLISHED),
            moderated("p-1", 2, SubmissionState.WITHDRAWN, reason="Vi phạm nội quy"),
        ),
    )
    row = store.submissions["p-1"]
    assert (row["state"], row["public"], row["reason"]) == ("withdrawn", False, "Vi phạm nội quy")


async def test_feedback_on_a_draft_is_never_public(store: Store) -> None:
    store.submit("f-1", SubmissionKind.FEEDBACK)
    await run(
        SUBMISSION_MODERATED.name,
        [
            record_for(
                SUBMISSION_MODERATED.name,
                moderated("f-1", 1, SubmissionState.PUBLISHED, kind=SubmissionKind.FEEDBACK),
            )
        ],
    )
    assert store.submissions["f-1"]["public"] is False


async def test_steps_apply_in_order_and_a_late_older_one_changes_nothing(store: Store) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    await run(
        SUBMISSION_MODERATED.name,
        records_for(
            SUBMISSION_MODERATED.name,
            moderated("p-1", 1, SubmissionState.ACCEPTED),
            moderated("p-1", 3, SubmissionState.PUBLISHED),
            moderated("p-1", 2, SubmissionState.REJECTED, reason="cũ"),  # older than 3
        ),
    )
    assert [s["revision"] for s in store.steps] == [1, 3]
    assert (store.submissions["p-1"]["state"], store.submissions["p-1"]["public"]) == (
        "published",
        True,
    )


async def test_the_same_step_delivered_twice_is_recorded_once(store: Store) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    event = moderated("p-1", 1, SubmissionState.PUBLISHED)
    ledger = await run(
        SUBMISSION_MODERATED.name, records_for(SUBMISSION_MODERATED.name, event, event)
    )
    await run(
        SUBMISSION_MODERATED.name,
        [record_for(SUBMISSION_MODERATED.name, event, offset=2)],  # redelivered later
        ledger,
    )
    assert len(store.steps) == 1


async def test_bad_steps_are_dead_lettered_with_a_reason_and_the_rest_goes_on(
    store: Store,
) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    records = [
        record_for(
            SUBMISSION_MODERATED.name,
            moderated("p-1", 1, SubmissionState.PUBLISHED, subject="khac"),
            offset=0,
        ),
        record_for(
            SUBMISSION_MODERATED.name, moderated("p-9", 1, SubmissionState.PUBLISHED), offset=1
        ),
        Record(SUBMISSION_MODERATED.name, 0, 2, b"p-x", b"{"),
        record_for(
            SUBMISSION_MODERATED.name, moderated("p-1", 2, SubmissionState.PUBLISHED), offset=3
        ),
    ]
    ledger = await run(SUBMISSION_MODERATED.name, records)
    assert [(s["submission_id"], s["revision"]) for s in store.steps] == [("p-1", 2)]
    by_offset = {r.record.offset: r for r in ledger.rejections}
    assert sorted(by_offset) == [0, 1, 2]
    assert (by_offset[0].error_type, by_offset[0].reason) == (
        "invalid",
        "subject: is not the submission id",
    )
    assert (by_offset[1].error_type, by_offset[1].reason) == (
        "unknown",
        "submission_id: no submission p-9 was made here",
    )
    assert by_offset[2].reason and by_offset[2].record.value == b"{"


# --- question.answered ----------------------------------------------------------------------


async def test_a_published_answer_makes_the_question_public(store: Store) -> None:
    store.submit("q-1", SubmissionKind.QA)
    await run(QUESTION_ANSWERED.name, [record_for(QUESTION_ANSWERED.name, answered("q-1", 2))])
    row = store.submissions["q-1"]
    assert (row["public"], row["answer_revision"], row["answered_by"]) == (True, 2, "Sở Nội vụ")
    assert row["answer_html"].startswith("<p>Trả lời")
    assert store.live == []  # not a dialogue question


async def test_a_live_dialogue_shows_the_answer_without_the_askers_contact(store: Store) -> None:
    store.submit("q-1", SubmissionKind.DIALOGUE, dialogue="doi-thoai-1")
    await run(
        QUESTION_ANSWERED.name,
        [record_for(QUESTION_ANSWERED.name, answered("q-1", 2, kind="dialogue"))],
    )
    [(code, question, kind, payload)] = store.live
    assert (code, question, kind) == ("doi-thoai-1", "q-1", "answer")
    assert payload["asker"] == "Nguyễn Văn A"
    assert "a@example.vn" not in str(payload)


async def test_an_answer_never_shows_a_question_rejected_since(store: Store) -> None:
    store.submit("q-1", SubmissionKind.QA)
    # The rejection (revision 3) arrives before the older answer (revision 2).
    await run(
        SUBMISSION_MODERATED.name,
        [
            record_for(
                SUBMISSION_MODERATED.name,
                moderated("q-1", 3, SubmissionState.REJECTED, kind=SubmissionKind.QA),
            )
        ],
    )
    await run(QUESTION_ANSWERED.name, [record_for(QUESTION_ANSWERED.name, answered("q-1", 2))])
    assert store.submissions["q-1"]["public"] is False


async def test_an_answer_to_no_question_here_is_dead_lettered(store: Store) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    store.submit("q-1", SubmissionKind.QA)
    ledger = await run(
        QUESTION_ANSWERED.name,
        records_for(QUESTION_ANSWERED.name, answered("p-1", 1), answered("q-1", 1)),
    )
    [rejection] = ledger.rejections
    assert (rejection.record.offset, rejection.error_type) == (0, "unknown")
    assert rejection.reason == "question_id: no question p-1 was submitted here"
    assert store.submissions["q-1"]["public"] is True


# --- article.published ----------------------------------------------------------------------


def article(article_id: str, revision: int, state: PublishedState) -> ArticlePublishedEvent:
    body = None
    if state is PublishedState.PUBLISHED:
        body = NormalizedArticle(title="Hội nghị", summary="", body_html="", body_text="")
    return ArticlePublishedEvent(
        producer="publishing",
        subject=article_id,
        data=ArticlePublished(
            article_id=article_id,
            source="tp-ha-noi",
            revision=revision,
            state=state,
            slug="hoi-nghi",
            url_path="/bai-viet/hoi-nghi",
            published_at=NOW,
            updated_at=NOW,
            article=body,
        ),
    )


async def test_the_newest_revision_of_each_article_decides_if_it_takes_comments(
    store: Store,
) -> None:
    ledger = await run(
        ARTICLE_PUBLISHED.name,
        records_for(
            ARTICLE_PUBLISHED.name,
            article("a-1", 1, PublishedState.PUBLISHED),
            article("a-1", 3, PublishedState.RETRACTED),
            article("a-1", 2, PublishedState.PUBLISHED),  # older than the retraction
        ),
    )
    assert (store.articles["a-1"]["revision"], store.articles["a-1"]["state"]) == (3, "retracted")
    assert store.articles["a-1"]["title"] is None
    assert ledger.commits == 1  # the batch in one statement, not split and retried


async def test_one_batch_over_the_groups_topics_records_only_the_inbox_topics_events(
    store: Store,
) -> None:
    store.submit("p-1", SubmissionKind.FORUM_THREAD)
    step = moderated("p-1", 1, SubmissionState.PUBLISHED)
    published = article("a-1", 1, PublishedState.PUBLISHED)
    ledger = await run(
        ARTICLE_PUBLISHED.name,
        [
            record_for(SUBMISSION_MODERATED.name, step),
            record_for(ARTICLE_PUBLISHED.name, published),
        ],
    )
    assert store.submissions["p-1"]["public"] is True
    assert store.articles["a-1"]["state"] == "published"
    # article.published is idempotent by revision: no inbox row for it.
    assert step.event_id in ledger.seen
    assert published.event_id not in ledger.seen
    assert ledger.commits == 1
