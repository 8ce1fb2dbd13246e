"""The Q&A's request and response models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from portal_contracts.articles import SourceCode
from portal_engagement.submissions.schemas import CODE_PATTERN, PageMeta, SubmitterIn


class QuestionIn(SubmitterIn):
    topic: str = Field(pattern=CODE_PATTERN, max_length=64, description="A Q&A topic code.")
    agency: SourceCode | None = Field(
        default=None, description="The agency the question is for, if the asker knows it."
    )
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=5000)


class AnsweredQuestionOut(BaseModel):
    id: str
    reference: str
    topic: str | None
    agency: str | None = Field(description="The agency that answered (or was addressed).")
    title: str | None
    question: str = Field(validation_alias="body")
    asker: str | None = Field(
        validation_alias="display_name", description="The name the asker chose to show, if any."
    )
    asked_at: datetime = Field(validation_alias="submitted_at")
    answer_html: str | None
    answered_by: str | None
    answered_at: datetime | None
    path: str


class QuestionPage(PageMeta):
    items: list[AnsweredQuestionOut]


class AgencyTimesOut(BaseModel):
    agency: str
    answered: int
    median_hours: float | None = Field(description="Median time from question to answer.")
    p90_hours: float | None = Field(description="Nine in ten questions answered within this.")
    mean_hours: float | None
    waiting: int = Field(description="Questions routed to the agency, not answered yet.")
    oldest_waiting_since: datetime | None
