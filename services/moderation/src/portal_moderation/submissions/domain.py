"""Moderation of public submissions: pure rules, no I/O.

Questions (Q&A and dialogues), feedback, forum threads and replies, and article comments all
wait in the editors' desk. What each action does depends on the kind:

========== ===================================================================================
qa         approve (screened) -> route to an agency -> answer (a draft) -> publish (reviewed);
           reject before publication; withdraw a published answer (chief editor, admin)
dialogue   approve, pick (for the guests) -> answer: published live at once; reject; withdraw
feedback   approve (passed to the officials) or reject; never public
posts      forum threads, replies and comments: approve (published) or reject; withdraw a
           published post (after a report); dismiss the reports on it
========== ===================================================================================

Every change bumps the item's ``revision``, which is also the editors' optimistic lock and the
revision of the events it emits (``submission.moderated``; ``question.answered`` for answers).
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from portal_contracts.questions import QuestionAnswered, QuestionAnsweredEvent
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionModerated,
    SubmissionModeratedEvent,
    SubmissionState,
)
from portal_moderation.domain import Editor, Forbidden, Role

PRODUCER = "moderation"
EDITORS_DESK = "Ban Biên tập Cổng Thông tin điện tử"  # who answered, when no agency did

POST_KINDS = frozenset(
    {SubmissionKind.FORUM_THREAD, SubmissionKind.FORUM_REPLY, SubmissionKind.COMMENT}
)
QUESTION_KINDS = frozenset({SubmissionKind.QA, SubmissionKind.DIALOGUE})


class SubState(StrEnum):
    PENDING = "pending"  # waiting for an editor
    ACCEPTED = "accepted"
    ROUTED = "routed"
    PICKED = "picked"
    ANSWERED = "answered"  # a Q&A answer waiting for review
    PUBLISHED = "published"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class SubAction(StrEnum):
    VIEW = "view"
    APPROVE = "approve"
    REJECT = "reject"
    ROUTE = "route"
    PICK = "pick"
    ANSWER = "answer"
    PUBLISH = "publish"
    WITHDRAW = "withdraw"
    DISMISS_REPORTS = "dismiss_reports"


SUB_PERMISSIONS: dict[Role, frozenset[SubAction]] = {
    Role.ADMIN: frozenset(SubAction),
    Role.CHIEF_EDITOR: frozenset(SubAction),
    # Editors withdraw posts and comments; a published answer only a chief editor withdraws.
    Role.EDITOR: frozenset(SubAction),
    Role.AGENCY_PUBLISHER: frozenset({SubAction.VIEW, SubAction.ANSWER}),
}
# States in which an agency publisher sees a question routed to its agency.
AGENCY_STATES = frozenset({SubState.ROUTED, SubState.ANSWERED, SubState.PUBLISHED})


class SubConflict(Exception):
    """Not in a state for this action, or changed since the editor looked (HTTP 409)."""

    def __init__(self, reason: str, *, revision: int, state: SubState) -> None:
        super().__init__(reason)
        self.reason = reason
        self.revision = revision
        self.state = state


class SubInvalid(ValueError):
    """A field of the action is wrong (HTTP 422); the message names it."""


@dataclass(frozen=True)
class SubItem:
    """What the rules need to know of a submission in the desk."""

    kind: SubmissionKind
    state: SubState
    revision: int
    routed_agency: str | None = None
    published_revision: int | None = None  # the revision of the answer the public sees
    open_reports: int = 0


def authorize_sub(editor: Editor, action: SubAction, item: SubItem | None = None) -> None:
    """Raise ``Forbidden`` unless ``editor`` may do ``action`` (on ``item``)."""
    if action not in SUB_PERMISSIONS[editor.role]:
        raise Forbidden(f"role {editor.role.value} may not {action.value} submissions")
    if item is None:
        return
    if editor.role is Role.AGENCY_PUBLISHER and (
        item.kind is not SubmissionKind.QA
        or item.routed_agency != editor.source
        or item.state not in AGENCY_STATES
    ):
        raise Forbidden(f"agency: this account sees only the questions routed to {editor.source}")
    if (
        action is SubAction.WITHDRAW
        and item.kind in QUESTION_KINDS
        and editor.role not in (Role.ADMIN, Role.CHIEF_EDITOR)
    ):
        raise Forbidden("role: only a chief editor or an admin withdraws a published answer")


@dataclass(frozen=True)
class SubOutcome:
    state: SubState
    revision: int
    step: SubmissionState | None  # the submission.moderated step to emit, if any
    answer: str | None = None  # "published" or "withdrawn": the question.answered to emit
    published_revision: int | None = None


_TRANSITIONS: dict[tuple[SubAction, str], tuple[frozenset[SubState], SubState]] = {}


def _allow(
    action: SubAction, kinds: frozenset[SubmissionKind], came: set[SubState], to: SubState
) -> None:
    for kind in kinds:
        _TRANSITIONS[(action, kind.value)] = (frozenset(came), to)


P, AC, RO, PI, AN, PU, RE, WI = (
    SubState.PENDING,
    SubState.ACCEPTED,
    SubState.ROUTED,
    SubState.PICKED,
    SubState.ANSWERED,
    SubState.PUBLISHED,
    SubState.REJECTED,
    SubState.WITHDRAWN,
)
QA = frozenset({SubmissionKind.QA})
DIALOGUE = frozenset({SubmissionKind.DIALOGUE})
FEEDBACK = frozenset({SubmissionKind.FEEDBACK})

_allow(SubAction.APPROVE, QA | DIALOGUE | FEEDBACK, {P}, AC)
_allow(SubAction.APPROVE, POST_KINDS, {P}, PU)
_allow(SubAction.REJECT, QA, {P, AC, RO, AN}, RE)
_allow(SubAction.REJECT, DIALOGUE, {P, AC, PI}, RE)
_allow(SubAction.REJECT, FEEDBACK | POST_KINDS, {P}, RE)
_allow(SubAction.ROUTE, QA, {P, AC, RO}, RO)
_allow(SubAction.PICK, DIALOGUE, {P, AC}, PI)
_allow(SubAction.ANSWER, QA, {AC, RO, AN, PU}, AN)
_allow(SubAction.ANSWER, DIALOGUE, {P, AC, PI, PU}, PU)
_allow(SubAction.PUBLISH, QA, {AN}, PU)
_allow(SubAction.WITHDRAW, QA | DIALOGUE | POST_KINDS, {PU}, WI)


def decide_sub(item: SubItem, action: SubAction, revision: int | None) -> SubOutcome:
    """The item's next state for ``action`` (the caller has authorised the editor)."""
    if revision is not None and revision != item.revision:
        raise SubConflict(
            f"revision: the submission changed since you opened it (revision {revision}, now "
            f"{item.revision}, state {item.state.value}); reload it before acting",
            revision=item.revision,
            state=item.state,
        )
    next_revision = item.revision + 1
    if action is SubAction.DISMISS_REPORTS:
        if item.open_reports == 0:
            raise SubConflict(
                "reports: there is no open report", revision=item.revision, state=item.state
            )
        return SubOutcome(
            item.state, next_revision, None, published_revision=item.published_revision
        )
    rule = _TRANSITIONS.get((action, item.kind.value))
    if rule is None:
        raise SubConflict(
            f"action: a {item.kind.value} submission cannot be {action.value}ed",
            revision=item.revision,
            state=item.state,
        )
    allowed, to = rule
    # A Q&A answer that was public may still be withdrawn while a new draft waits.
    withdrawable_draft = (
        action is SubAction.WITHDRAW
        and item.kind is SubmissionKind.QA
        and item.state is AN
        and item.published_revision is not None
    )
    if item.state not in allowed and not withdrawable_draft:
        raise SubConflict(
            f"state: cannot {action.value} a {item.kind.value} that is {item.state.value}",
            revision=item.revision,
            state=item.state,
        )
    if action is SubAction.REJECT and item.published_revision is not None:
        raise SubConflict(
            "state: an answer of this question is public; withdraw it instead",
            revision=item.revision,
            state=item.state,
        )
    step = SubmissionState(to.value)
    answer: str | None = None
    published = item.published_revision
    if item.kind in QUESTION_KINDS and to is PU:
        answer, published = "published", next_revision
    if item.kind in QUESTION_KINDS and to is WI:
        answer, published = "withdrawn", None
    return SubOutcome(to, next_revision, step, answer, published)


# --- answers --------------------------------------------------------------------------------

_BLANK = re.compile(r"\n\s*\n")
MAX_ANSWER_CHARS = 20_000


def answer_html(text: str) -> str:
    """An editor's or agency's plain-text answer as safe HTML: paragraphs and line breaks,
    everything else escaped (no markup is accepted from the answer form)."""
    paragraphs = [p.strip() for p in _BLANK.split(text.replace("\r\n", "\n")) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line.strip()) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def check_answer(text: str) -> str:
    cleaned = text.strip()
    if len(cleaned) < 2:
        raise SubInvalid("answer: must not be empty")
    if len(cleaned) > MAX_ANSWER_CHARS:
        raise SubInvalid(f"answer: at most {MAX_ANSWER_CHARS} characters")
    return cleaned


# --- events ---------------------------------------------------------------------------------


def moderated_event(
    *,
    submission_id: str,
    kind: SubmissionKind,
    revision: int,
    step: SubmissionState,
    at: datetime,
    reason: str | None = None,
    agency: str | None = None,
) -> SubmissionModeratedEvent:
    return SubmissionModeratedEvent(
        producer=PRODUCER,
        subject=submission_id,
        data=SubmissionModerated(
            submission_id=submission_id,
            kind=kind,
            revision=revision,
            state=step,
            reason=reason,
            agency=agency,
            moderated_at=at,
        ),
    )


def answered_event(
    *,
    question_id: str,
    kind: SubmissionKind,
    revision: int,
    state: str,
    topic: str,
    agency: str | None,
    title: str,
    question_body: str,
    answer: str,
    answered_by: str,
    asked_at: datetime,
    answered_at: datetime,
    dialogue_id: str | None,
) -> QuestionAnsweredEvent:
    return QuestionAnsweredEvent(
        producer=PRODUCER,
        subject=question_id,
        data=QuestionAnswered(
            question_id=question_id,
            revision=revision,
            state=state,
            topic=topic,
            agency=agency,
            title=title,
            question_body=question_body,
            answer_html=answer,
            answered_by=answered_by,
            asked_at=asked_at,
            answered_at=answered_at,
            kind="dialogue" if kind is SubmissionKind.DIALOGUE else "qa",
            dialogue_id=dialogue_id if kind is SubmissionKind.DIALOGUE else None,
        ),
    )


def allowed_actions(editor: Editor, item: SubItem) -> list[SubAction]:
    """What ``editor`` may do on ``item`` now (its role, its agency and the item's state)."""
    out = []
    for action in SUB_PERMISSIONS[editor.role]:
        if action is SubAction.VIEW:
            continue
        try:
            authorize_sub(editor, action, item)
            decide_sub(item, action, None)
        except (Forbidden, SubConflict):
            continue
        out.append(action)
    return sorted(out)


# --- the feedback export for the officials --------------------------------------------------

FEEDBACK_COLUMNS = (
    "reference",
    "section_id",
    "section_title",
    "submitted_at",
    "state",
    "author",
    "flags",
    "feedback",
)
WHOLE_DOCUMENT = "(toàn văn)"


def feedback_records(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Feedback rows as the officials read them (never any contact detail: there is none)."""
    return [
        {
            "reference": r["reference"] or r["id"],
            "section_id": r["section_id"] or "",
            "section_title": r["section_title"] or WHOLE_DOCUMENT,
            "submitted_at": r["submitted_at"].isoformat(),
            "state": r["state"],
            "author": r["author"] or "",
            "flags": " ".join(r["flags"]),
            "feedback": r["body"],
        }
        for r in rows
    ]


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """The cell as text a spreadsheet shows, never runs: a formula start gets a leading "'"."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def feedback_csv(records: list[dict[str, str]]) -> str:
    """CSV with a BOM, so spreadsheet programs read the Vietnamese text as UTF-8.

    Every cell is written spreadsheet-safe: the public writes the feedback and the author name.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(FEEDBACK_COLUMNS))
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in r.items()} for r in records)
    return "\ufeff" + buffer.getvalue()
