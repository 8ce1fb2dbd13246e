"""The feedback's request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from portal_engagement.submissions.schemas import CODE_PATTERN, Model, SubmitterIn

Phase = Literal["upcoming", "open", "closed"]


class FeedbackIn(SubmitterIn):
    section: str | None = Field(
        default=None,
        pattern=CODE_PATTERN,
        max_length=64,
        description="The section commented on; omit for feedback on the whole document.",
    )
    body: str = Field(min_length=1, max_length=10_000)


class SectionModel(Model):
    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(default="", max_length=200_000)


class SectionOut(SectionModel):
    feedback: int = Field(description="Feedback received on this section.")


class DocumentSummaryOut(BaseModel):
    code: str
    title: str
    summary: str
    requested_by: str
    opens_at: datetime
    deadline: datetime
    phase: Phase


class DocumentOut(DocumentSummaryOut):
    sections: list[SectionOut]
    feedback_on_whole: int = Field(description="Feedback received on the whole document.")
    feedback_total: int


class DocumentIn(Model):
    title: str = Field(min_length=1, max_length=500)
    summary: str = Field(default="", max_length=10_000)
    requested_by: str = Field(
        min_length=1, max_length=300, description="The officials or body who asked for feedback."
    )
    sections: list[SectionModel] = Field(default_factory=list, max_length=500)
    opens_at: AwareDatetime
    deadline: AwareDatetime
