"""The models every submission form shares: who submits, the receipt, errors, pages, reports,
the status link, topics (of the Q&A and the forum) and the officials' view of contact details.

No public response model has a contact field: e-mail and phone go in, never out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from portal_contracts.submissions import ReportReason, SubmissionKind
from portal_runtime.problems import NulFree

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
CodePath = Annotated[str, Path(pattern=CODE_PATTERN, min_length=1, max_length=64)]
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
PageQuery = Annotated[int, Query(ge=1, le=500)]
SizeQuery = Annotated[int, Query(ge=1, le=50)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]{8,100}$",
        description=(
            "Optional, e.g. a UUID the form generates once: sending the same submission again "
            "with the same key stores nothing new (a retry after a network error is safe). "
            "The same key with other content or other contact details is refused with 409."
        ),
    ),
]


class Model(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubmitterIn(Model):
    """Who submits: a public name if they want one, private contact details if they want a
    reply; and the spam trap."""

    display_name: str | None = Field(
        default=None, max_length=100, description="Shown with the text; empty: anonymous."
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        description="Private: stored apart from the text, never published or shown by any "
        "public API. Counted for the rate limit.",
    )
    phone: str | None = Field(
        default=None, max_length=32, description="Private, like the e-mail address."
    )
    website: str = Field(
        default="",
        max_length=500,
        description="Spam trap: the form hides this field from people; leave it empty. A "
        "submission that fills it is answered as usual and thrown away.",
    )


class ReceiptOut(BaseModel):
    id: str
    reference: str = Field(description="Quote it when asking about the submission.")
    kind: SubmissionKind
    status: str
    status_label: str
    held_for_review: bool = Field(
        description="The text has links or words an editor must check before it can be public."
    )
    message: str
    submitted_at: datetime
    status_token: str = Field(description="Private: whoever has it can follow the submission.")
    status_path: str = Field(description="The private status link: GET it to follow each step.")
    repeated: bool = Field(
        default=False, description="The same Idempotency-Key was used before: not stored again."
    )


class ErrorOut(BaseModel):
    detail: Any


class PageMeta(BaseModel):
    total: int
    page: int
    size: int


SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "What it is about does not exist or is not public"},
    409: {
        "model": ErrorOut,
        "description": "Closed: the dialogue ended, the deadline passed; or the "
        "Idempotency-Key was used before with other content",
    },
    413: {"model": ErrorOut, "description": "Body too large"},
    422: {
        "model": ErrorOut,
        "description": "A field is invalid: too long or short, not Vietnamese with diacritics, "
        "a bad e-mail or phone (the field is named in `loc`)",
    },
    429: {"model": ErrorOut, "description": "Too many submissions; see Retry-After"},
}


class ReportIn(Model):
    reason: ReportReason
    note: str | None = Field(default=None, max_length=500)


class ReportOut(BaseModel):
    report_id: str
    received: bool = Field(description="False: this reader had already reported the post.")
    message: str


REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such published post"},
    429: {"model": ErrorOut, "description": "Too many reports; see Retry-After"},
}


class StepOut(BaseModel):
    state: str
    label: str = Field(description="The step in Vietnamese, as shown to the submitter.")
    at: datetime
    agency: str | None = None
    note: str | None = Field(default=None, description="A reason given with the step.")


class AnswerOut(BaseModel):
    answer_html: str
    answered_by: str | None
    answered_at: datetime | None


class StatusOut(BaseModel):
    reference: str
    kind: SubmissionKind
    state: str
    label: str
    held_for_review: bool
    submitted_at: datetime
    title: str | None
    body: str
    about: dict[str, str] = Field(
        description="What it is about: topic, agency, dialogue, document, section, thread, article."
    )
    steps: list[StepOut] = Field(description="Every step so far, the first is 'received'.")
    reason: str | None = Field(description="Why it was rejected or withdrawn.")
    answer: AnswerOut | None = Field(description="The published answer (questions).")
    public_path: str | None = Field(description="Where the public sees it, once published.")


class TopicOut(BaseModel):
    code: str
    name: str
    description: str


class TopicIn(Model):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    position: int = Field(default=0, ge=0, le=10_000, description="Order in lists.")
    active: bool = True


class TopicAdminOut(TopicOut):
    position: int
    active: bool
    updated_at: datetime


class ContactOut(BaseModel):
    submission_id: str
    reference: str
    kind: SubmissionKind
    email: str | None
    phone: str | None
