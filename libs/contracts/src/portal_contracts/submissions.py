"""Public submissions other than questions (feedback, forum posts, comments) and the moderation
steps of every submission, questions included.

Like questions, these events never carry the submitter's contact details: those stay in the
engagement service's own store, apart from the public text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from portal_contracts.articles import SourceCode
from portal_contracts.envelope import Envelope, Payload


class SubmissionKind(StrEnum):
    QA = "qa"  # a question of the online Q&A (submitted as question.submitted)
    DIALOGUE = "dialogue"  # a question to an online dialogue (question.submitted)
    FEEDBACK = "feedback"  # feedback on a draft document (Góp ý xây dựng Đảng)
    FORUM_THREAD = "forum_thread"
    FORUM_REPLY = "forum_reply"
    COMMENT = "comment"  # a reader's comment on an article


# Kinds that travel as submission.submitted (questions have their own topic).
PostKind = Literal["feedback", "forum_thread", "forum_reply", "comment"]


class SubmissionState(StrEnum):
    """A step of moderation, as the submitter's private status link shows it."""

    ACCEPTED = "accepted"  # screened by an editor: kept (a question waits for its answer)
    ROUTED = "routed"  # a question sent to the agency that should answer it
    PICKED = "picked"  # a dialogue question chosen for the guests
    ANSWERED = "answered"  # an answer is written and waits for review
    PUBLISHED = "published"  # public (a post, a comment, an answered question)
    REJECTED = "rejected"  # refused, with a reason
    WITHDRAWN = "withdrawn"  # was public, removed (with a reason)


class SubmissionSubmitted(Payload):
    submission_id: str = Field(min_length=1, max_length=64)
    kind: PostKind
    context_id: str = Field(
        min_length=1,
        max_length=100,
        description=(
            "What it is about: the feedback document's code, the forum topic's code (a thread), "
            "the thread id (a reply), the article id (a comment)."
        ),
    )
    context_title: str | None = Field(default=None, max_length=500)
    section_id: str | None = Field(
        default=None, max_length=100, description="The document section a feedback is about."
    )
    section_title: str | None = Field(default=None, max_length=500)
    title: str | None = Field(default=None, max_length=300, description="A thread's title.")
    body: str = Field(min_length=1, max_length=20_000)
    author_display_name: str | None = Field(default=None, max_length=100)
    submitted_at: AwareDatetime
    screening_flags: list[str] = Field(
        default_factory=list,
        description="Why a person must look closely (banned_word, suspect_word, link, ...).",
    )
    reference: str | None = Field(
        default=None, max_length=32, description="The acknowledgement number the submitter got."
    )


class SubmissionModerated(Payload):
    submission_id: str = Field(min_length=1, max_length=64)
    kind: SubmissionKind
    revision: int = Field(
        ge=1, description="Counts the submission's moderation steps; higher is newer."
    )
    state: SubmissionState
    reason: str | None = Field(
        default=None, max_length=2000, description="Why it was rejected or withdrawn."
    )
    agency: SourceCode | None = Field(
        default=None, description="The agency a question is routed to."
    )
    moderated_at: AwareDatetime


class ReportReason(StrEnum):
    SPAM = "spam"
    OFFENSIVE = "offensive"
    FALSE_INFORMATION = "false_information"
    OFF_TOPIC = "off_topic"
    OTHER = "other"


class SubmissionReported(Payload):
    report_id: str = Field(min_length=1, max_length=64)
    submission_id: str = Field(min_length=1, max_length=64)
    kind: PostKind
    reason: ReportReason
    note: str | None = Field(default=None, max_length=500)
    reports: int = Field(ge=1, description="Reports on this post so far, this one included.")
    reported_at: AwareDatetime


class SubmissionSubmittedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "submission.submitted"
    type: Literal["submission.submitted"] = "submission.submitted"
    data: SubmissionSubmitted


class SubmissionModeratedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "submission.moderated"
    type: Literal["submission.moderated"] = "submission.moderated"
    data: SubmissionModerated


class SubmissionReportedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "submission.reported"
    type: Literal["submission.reported"] = "submission.reported"
    data: SubmissionReported
