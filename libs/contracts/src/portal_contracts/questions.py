"""Question events of the online Q&A: submitted by the public, answered through moderation.

The asker's contact details never travel in an event: they stay in the engagement service's own
store, apart from the public text.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from portal_contracts.articles import SourceCode
from portal_contracts.envelope import Envelope, Payload


class QuestionSubmitted(Payload):
    question_id: str
    kind: Literal["qa", "dialogue"] = "qa"
    dialogue_id: str | None = None
    topic: str = Field(min_length=1, max_length=100)
    agency: SourceCode | None = Field(default=None, description="Agency the asker addressed.")
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=10_000)
    asker_display_name: str | None = Field(default=None, max_length=100)
    submitted_at: AwareDatetime
    screening_flags: list[str] = Field(default_factory=list)
    reference: str | None = Field(
        default=None, max_length=32, description="The acknowledgement number the asker got."
    )
    context_title: str | None = Field(
        default=None,
        max_length=300,
        description="Title of the dialogue a dialogue question is for.",
    )


class QuestionAnswered(Payload):
    question_id: str
    revision: int = Field(ge=1)
    state: Literal["published", "withdrawn"] = "published"
    topic: str
    agency: SourceCode | None = None
    title: str
    question_body: str
    answer_html: str
    answered_by: str = Field(description="Agency or editor who answered.")
    asked_at: AwareDatetime
    answered_at: AwareDatetime
    kind: Literal["qa", "dialogue"] = Field(
        default="qa", description="'dialogue': an answer given live in an online dialogue."
    )
    dialogue_id: str | None = Field(default=None, description="The dialogue, for kind 'dialogue'.")


class QuestionSubmittedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "question.submitted"
    type: Literal["question.submitted"] = "question.submitted"
    data: QuestionSubmitted


class QuestionAnsweredEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "question.answered"
    type: Literal["question.answered"] = "question.answered"
    data: QuestionAnswered
