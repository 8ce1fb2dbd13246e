"""What each feature's submissions are about (their ``Target``) and the receipt, without the
stack: the idempotency scope, the columns stored, the event moderation gets, and what the
public sees of a receipt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal_contracts.submissions import SubmissionKind
from portal_contracts.topics import QUESTION_SUBMITTED, SUBMISSION_SUBMITTED
from portal_engagement.comments.usecases import Comment
from portal_engagement.dialogues.usecases import DialogueQuestion
from portal_engagement.feedback.usecases import Feedback
from portal_engagement.forum.usecases import Reply, Thread
from portal_engagement.qa.usecases import Question
from portal_engagement.submissions.gate import decoy, receipt_out
from portal_engagement.submissions.intake import Receipt, Refused, Stored, Target, Text

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TEXT = Text(
    title=None,
    body="Tôi xin hỏi về chế độ bảo hiểm y tế cho người cao tuổi.",
    display_name="Lan",
    flags=["link:bit.ly/x"],
    held=True,
)


def stored(context: dict[str, object]) -> Stored:
    return Stored("s-1", "HD-2026-000007", TEXT, NOW, context)


@pytest.mark.parametrize(
    ("target", "kind", "topic", "key"),
    [
        (Question("y-te", "bo-y-te"), SubmissionKind.QA, QUESTION_SUBMITTED.name, "y-te"),
        (DialogueQuestion("dt-1"), SubmissionKind.DIALOGUE, QUESTION_SUBMITTED.name, "dt-1"),
        (
            Feedback("du-thao", "ch-1"),
            SubmissionKind.FEEDBACK,
            SUBMISSION_SUBMITTED.name,
            "du-thao/ch-1",
        ),
        (Feedback("du-thao", None), SubmissionKind.FEEDBACK, SUBMISSION_SUBMITTED.name, "du-thao/"),
        (Thread("y-kien"), SubmissionKind.FORUM_THREAD, SUBMISSION_SUBMITTED.name, "y-kien"),
        (Reply("t-9"), SubmissionKind.FORUM_REPLY, SUBMISSION_SUBMITTED.name, "t-9"),
        (Comment("a-3"), SubmissionKind.COMMENT, SUBMISSION_SUBMITTED.name, "a-3"),
    ],
)
def test_each_target_names_its_kind_topic_and_idempotency_scope(
    target: Target, kind: SubmissionKind, topic: str, key: str
) -> None:
    assert (target.kind, target.topic, target.key) == (kind, topic, key)


def test_a_question_event_carries_the_text_and_flags_but_no_contact() -> None:
    event = Question("y-te", "bo-y-te").event(stored({}))
    data = event.data
    assert event.subject == "s-1" and data.question_id == "s-1"
    assert (data.kind, data.topic, data.agency) == ("qa", "y-te", "bo-y-te")
    assert data.title.startswith("Tôi xin hỏi")  # no title: taken from the body
    assert data.screening_flags == ["link:bit.ly/x"] and data.reference == "HD-2026-000007"
    assert "email" not in event.model_dump_json() and "phone" not in event.model_dump_json()


def test_posts_name_what_they_are_about_from_their_context() -> None:
    thread = Thread("y-kien").event(stored({"name": "Ý kiến nhân dân"})).data
    reply = Reply("t-9").event(stored({"title": "Về cải cách hành chính"})).data
    comment = Comment("a-3").event(stored({"title": "Hội nghị Trung ương"})).data
    assert (thread.kind, thread.context_id, thread.context_title) == (
        "forum_thread",
        "y-kien",
        "Ý kiến nhân dân",
    )
    assert (reply.kind, reply.context_title) == ("forum_reply", "Về cải cách hành chính")
    assert (comment.kind, comment.context_id) == ("comment", "a-3")
    assert Reply("t-9").columns({"forum_topic": "y-kien"}) == {
        "thread_id": "t-9",
        "forum_topic": "y-kien",
    }


def test_feedback_names_its_section_and_refuses_one_the_document_lacks() -> None:
    document = {"title": "Dự thảo", "sections": [{"code": "ch-1", "title": "Chương I"}]}
    assert Feedback("du-thao", "ch-1").section_title(document) == "Chương I"
    assert Feedback("du-thao", None).section_title(document) is None
    with pytest.raises(Refused) as refused:
        Feedback("du-thao", "ch-9").section_title(document)
    [problem] = refused.value.problems
    assert problem.field == "section" and "ch-1" in problem.message
    event = Feedback("du-thao", "ch-1").event(stored({**document, "section_title": "Chương I"}))
    assert (event.data.section_id, event.data.section_title) == ("ch-1", "Chương I")


def test_the_receipt_says_held_or_not_and_the_spam_trap_looks_the_same() -> None:
    real = receipt_out(
        Receipt("s-1", "HD-2026-000007", SubmissionKind.QA, "received", True, NOW, "tok" * 10)
    )
    assert real.held_for_review and "held for review" in real.message
    assert real.status_path == f"/v1/status/{'tok' * 10}"
    fake = receipt_out(decoy(SubmissionKind.QA))
    assert set(fake.model_dump()) == set(real.model_dump())
    assert not fake.held_for_review and fake.reference.startswith("HD-")
