"""The submissions desk's rules (pure): who may act, what each action does per kind."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from portal_contracts.codec import decode, encode
from portal_contracts.questions import QuestionAnsweredEvent
from portal_contracts.submissions import SubmissionKind, SubmissionState
from portal_moderation.domain import Editor, Forbidden, Role
from portal_moderation.submissions.domain import (
    SubAction,
    SubConflict,
    SubInvalid,
    SubItem,
    SubState,
    answer_html,
    answered_event,
    authorize_sub,
    check_answer,
    decide_sub,
    feedback_csv,
)

EDITOR = Editor("bientap", Role.EDITOR)
CHIEF = Editor("tongbientap", Role.CHIEF_EDITOR)
AGENCY = Editor("boyte", Role.AGENCY_PUBLISHER, source="bo-y-te")


def item(kind: SubmissionKind, state: SubState, revision: int = 0, **kw: object) -> SubItem:
    return SubItem(kind=kind, state=state, revision=revision, **kw)  # type: ignore[arg-type]


def test_a_question_goes_accepted_routed_answered_published() -> None:
    q = item(SubmissionKind.QA, SubState.PENDING)
    steps = []
    for action in (SubAction.APPROVE, SubAction.ROUTE, SubAction.ANSWER, SubAction.PUBLISH):
        out = decide_sub(q, action, q.revision)
        steps.append(out.step)
        q = item(
            SubmissionKind.QA, out.state, out.revision, published_revision=out.published_revision
        )
    assert steps == [
        SubmissionState.ACCEPTED,
        SubmissionState.ROUTED,
        SubmissionState.ANSWERED,
        SubmissionState.PUBLISHED,
    ]
    assert q.state is SubState.PUBLISHED and q.revision == 4 and q.published_revision == 4


def test_publishing_emits_the_answer_and_withdrawing_takes_it_back() -> None:
    answered = item(SubmissionKind.QA, SubState.ANSWERED, 3)
    out = decide_sub(answered, SubAction.PUBLISH, 3)
    assert out.answer == "published" and out.published_revision == 4
    public = item(SubmissionKind.QA, SubState.PUBLISHED, 4, published_revision=4)
    gone = decide_sub(public, SubAction.WITHDRAW, 4)
    assert gone.answer == "withdrawn" and gone.published_revision is None
    assert gone.step is SubmissionState.WITHDRAWN


def test_a_new_draft_keeps_the_published_answer_public_until_republished() -> None:
    public = item(SubmissionKind.QA, SubState.PUBLISHED, 4, published_revision=4)
    draft = decide_sub(public, SubAction.ANSWER, 4)
    assert draft.state is SubState.ANSWERED and draft.answer is None
    assert draft.published_revision == 4
    # ... and it cannot be rejected any more, only withdrawn.
    redraft = item(SubmissionKind.QA, SubState.ANSWERED, 5, published_revision=4)
    with pytest.raises(SubConflict, match="withdraw"):
        decide_sub(redraft, SubAction.REJECT, 5)
    assert decide_sub(redraft, SubAction.WITHDRAW, 5).answer == "withdrawn"


def test_a_dialogue_answer_is_published_at_once() -> None:
    picked = item(SubmissionKind.DIALOGUE, SubState.PICKED, 1)
    out = decide_sub(picked, SubAction.ANSWER, 1)
    assert out.state is SubState.PUBLISHED and out.answer == "published"


def test_posts_are_published_by_approval_and_never_routed() -> None:
    for kind in (SubmissionKind.COMMENT, SubmissionKind.FORUM_THREAD, SubmissionKind.FORUM_REPLY):
        out = decide_sub(item(kind, SubState.PENDING), SubAction.APPROVE, 0)
        assert out.state is SubState.PUBLISHED and out.answer is None
        with pytest.raises(SubConflict):
            decide_sub(item(kind, SubState.PENDING), SubAction.ROUTE, 0)


def test_feedback_is_accepted_not_published() -> None:
    out = decide_sub(item(SubmissionKind.FEEDBACK, SubState.PENDING), SubAction.APPROVE, 0)
    assert out.state is SubState.ACCEPTED
    with pytest.raises(SubConflict):
        decide_sub(item(SubmissionKind.FEEDBACK, SubState.ACCEPTED, 1), SubAction.WITHDRAW, 1)


def test_the_revision_is_the_editors_lock() -> None:
    with pytest.raises(SubConflict, match="revision"):
        decide_sub(item(SubmissionKind.QA, SubState.PENDING, 2), SubAction.APPROVE, 1)


def test_reports_can_be_dismissed_only_when_open() -> None:
    post = item(SubmissionKind.COMMENT, SubState.PUBLISHED, 1, open_reports=2)
    out = decide_sub(post, SubAction.DISMISS_REPORTS, 1)
    assert out.step is None and out.state is SubState.PUBLISHED and out.revision == 2
    with pytest.raises(SubConflict, match="report"):
        decide_sub(
            item(SubmissionKind.COMMENT, SubState.PUBLISHED, 1), SubAction.DISMISS_REPORTS, 1
        )


def test_an_agency_publisher_sees_and_answers_only_its_routed_questions() -> None:
    mine = item(SubmissionKind.QA, SubState.ROUTED, 2, routed_agency="bo-y-te")
    authorize_sub(AGENCY, SubAction.ANSWER, mine)
    with pytest.raises(Forbidden):
        authorize_sub(AGENCY, SubAction.PUBLISH, mine)
    with pytest.raises(Forbidden):
        authorize_sub(
            AGENCY,
            SubAction.VIEW,
            item(SubmissionKind.QA, SubState.ROUTED, 2, routed_agency="bo-tai-chinh"),
        )
    with pytest.raises(Forbidden):
        authorize_sub(AGENCY, SubAction.VIEW, item(SubmissionKind.COMMENT, SubState.PENDING))


def test_only_chief_editors_withdraw_an_answer_editors_withdraw_posts() -> None:
    answer = item(SubmissionKind.QA, SubState.PUBLISHED, 4, published_revision=4)
    with pytest.raises(Forbidden):
        authorize_sub(EDITOR, SubAction.WITHDRAW, answer)
    authorize_sub(CHIEF, SubAction.WITHDRAW, answer)
    authorize_sub(EDITOR, SubAction.WITHDRAW, item(SubmissionKind.COMMENT, SubState.PUBLISHED, 1))


def test_answers_become_safe_html() -> None:
    html = answer_html("Theo Điều 5 <b>Luật</b>:\n- ý một\n\n<script>x</script>")
    assert (
        html
        == "<p>Theo Điều 5 &lt;b&gt;Luật&lt;/b&gt;:<br>- ý một</p><p>&lt;script&gt;x&lt;/script&gt;</p>"
    )
    with pytest.raises(SubInvalid, match="answer"):
        check_answer("  ")


def test_the_answer_event_round_trips() -> None:
    now = datetime.now(UTC)
    event = answered_event(
        question_id="q1",
        kind=SubmissionKind.DIALOGUE,
        revision=3,
        state="published",
        topic="xay-dung-dang",
        agency=None,
        title="Câu hỏi",
        question_body="Nội dung câu hỏi",
        answer="<p>Trả lời</p>",
        answered_by="Khách mời",
        asked_at=now,
        answered_at=now,
        dialogue_id="doi-thoai-1",
    )
    decoded = decode(encode(event), expected=QuestionAnsweredEvent)
    assert isinstance(decoded, QuestionAnsweredEvent)
    assert decoded.data.kind == "dialogue" and decoded.data.dialogue_id == "doi-thoai-1"


def test_the_feedback_csv_never_hands_a_spreadsheet_a_formula() -> None:
    row = {
        "reference": "GY-1",
        "section_id": "",
        "section_title": "Toàn văn",
        "submitted_at": "2026-01-01T00:00:00+00:00",
        "state": "accepted",
        "author": "@SUM(A1:A9)",
        "flags": "",
        "feedback": "Đề nghị sửa điều 3.",
    }
    attacks = ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@cmd", "\t=1", "\r=1"]
    records = [row] + [{**row, "feedback": a} for a in attacks]
    parsed = list(csv.DictReader(io.StringIO(feedback_csv(records).lstrip("\ufeff"))))
    # Ordinary text is exported as written.
    assert parsed[0]["feedback"] == "Đề nghị sửa điều 3."
    assert parsed[0]["reference"] == "GY-1"
    # A cell a spreadsheet would run starts with an apostrophe, the text kept after it.
    assert [r["feedback"] for r in parsed[1:]] == ["'" + a for a in attacks]
    assert {r["author"] for r in parsed} == {"'@SUM(A1:A9)"}
