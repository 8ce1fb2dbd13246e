"""The dialogues' request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from portal_engagement.submissions.schemas import CODE_PATTERN, Model, SubmitterIn

Phase = Literal["upcoming", "live", "ended"]


class DialogueQuestionIn(SubmitterIn):
    body: str = Field(min_length=1, max_length=2000)


class GuestModel(Model):
    name: str = Field(min_length=1, max_length=200)
    position: str = Field(default="", max_length=300, description="Title and agency.")


class DialogueOut(BaseModel):
    code: str
    title: str
    topic: str
    description: str
    guests: list[GuestModel]
    questions_open_at: datetime | None
    starts_at: datetime
    ends_at: datetime
    phase: Phase
    accepts_questions: bool
    answered: int = Field(description="Questions answered so far.")
    live_path: str = Field(description="Server-sent events: the answers as they come.")
    transcript_path: str


class TranscriptEntryOut(BaseModel):
    question_id: str = Field(validation_alias="id")
    question: str = Field(validation_alias="body")
    asker: str | None = Field(validation_alias="display_name")
    asked_at: datetime = Field(validation_alias="submitted_at")
    answer_html: str | None
    answered_by: str | None
    answered_at: datetime | None


class TranscriptOut(BaseModel):
    dialogue: DialogueOut
    complete: bool = Field(description="The session has ended: this is the archived transcript.")
    entries: list[TranscriptEntryOut]


class DialogueIn(Model):
    title: str = Field(min_length=1, max_length=300)
    topic: str = Field(pattern=CODE_PATTERN, max_length=64)
    description: str = Field(default="", max_length=10_000)
    guests: list[GuestModel] = Field(default_factory=list, max_length=50)
    questions_open_at: AwareDatetime | None = Field(
        default=None, description="When questions open; omit: from now on."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime
