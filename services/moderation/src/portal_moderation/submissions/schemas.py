"""The request and response models of the submissions API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from portal_contracts.articles import SourceCode
from portal_contracts.submissions import SubmissionKind
from portal_moderation.submissions.domain import SubAction, SubState
from portal_runtime.problems import NulFree


class Model(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubmissionOut(BaseModel):
    id: str
    kind: SubmissionKind
    state: SubState
    revision: int = Field(description="Send it back with an action (the optimistic lock).")
    reference: str | None = Field(description="The acknowledgement number the submitter got.")
    flags: list[str] = Field(
        description="Screening: banned_word:…, banned_variant:…, suspect_word:…, link:…"
    )
    flagged: bool
    topic: str | None
    agency: str | None = Field(description="The agency the asker addressed.")
    routed_agency: str | None
    context_id: str | None = Field(
        description="Dialogue, feedback document, forum topic, thread or article it is about."
    )
    context_title: str | None
    section_id: str | None
    section_title: str | None
    title: str | None
    body: str
    author: str | None = Field(description="The public name the submitter chose, if any.")
    answer_text: str | None
    answer_html: str | None
    answered_by: str | None
    answered_at: datetime | None
    published_revision: int | None
    published_at: datetime | None
    reason: str | None
    reports: int
    open_reports: int
    submitted_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    may: list[SubAction] = Field(description="What the signed-in account may do on it now.")


class SubmissionPage(BaseModel):
    items: list[SubmissionOut]
    next_cursor: str | None


class CountOut(BaseModel):
    kind: SubmissionKind
    state: SubState
    count: int
    flagged: int
    reported: int
    oldest: datetime | None


class RevisionIn(Model):
    revision: int = Field(ge=0, description="The revision you saw (optimistic lock).")


class ReasonIn(RevisionIn):
    reason: str = Field(
        min_length=1, max_length=2000, description="Shown to the submitter on their status link."
    )


class RouteIn(RevisionIn):
    agency: SourceCode


class AnswerIn(RevisionIn):
    answer: str = Field(
        min_length=1,
        max_length=20_000,
        description="Plain text; blank lines separate paragraphs (no markup is kept).",
    )
    answered_by: str | None = Field(
        default=None,
        max_length=300,
        description="Who answers (a dialogue guest, an agency); default: the routed agency or "
        "the editorial board. An agency publisher always answers for its agency.",
    )


class HistoryOut(BaseModel):
    action: str
    revision: int
    actor: str
    actor_role: str | None
    reason: str | None
    agency: str | None
    decided_at: datetime


class ReportOut(BaseModel):
    report_id: str
    reason: str
    note: str | None
    reported_at: datetime


class SubmissionDetail(SubmissionOut):
    history: list[HistoryOut]
    report_list: list[ReportOut]
