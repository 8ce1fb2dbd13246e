"""Asking the guests of a dialogue: what it is about (a dialogue taking questions) and its
event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.envelope import Envelope
from portal_contracts.questions import QuestionSubmitted, QuestionSubmittedEvent
from portal_contracts.submissions import SubmissionKind
from portal_contracts.topics import QUESTION_SUBMITTED
from portal_engagement import repository as repo
from portal_engagement.domain import PRODUCER, DialogueTimes, dialogue_refusal, title_from_body
from portal_engagement.submissions.intake import Closed, NotFound, Stored, Target


def times_of(row: dict[str, Any]) -> DialogueTimes:
    return DialogueTimes(row["questions_open_at"], row["starts_at"], row["ends_at"])


@dataclass(frozen=True)
class DialogueQuestion(Target):
    """A question for the guests of a dialogue, before or during the session."""

    code: str

    kind: ClassVar[SubmissionKind] = SubmissionKind.DIALOGUE
    topic: ClassVar[str] = QUESTION_SUBMITTED.name

    @property
    def key(self) -> str:
        return self.code

    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        row = await repo.get_dialogue(session, self.code)
        if row is None:
            raise NotFound(f"dialogue: no dialogue {self.code!r}")
        refusal = dialogue_refusal(times_of(row), now)
        if refusal:
            raise Closed(refusal)
        return row

    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"dialogue_code": self.code, "topic": context["topic"]}

    def event(self, s: Stored) -> Envelope:
        return QuestionSubmittedEvent(
            producer=PRODUCER,
            subject=s.id,
            data=QuestionSubmitted(
                question_id=s.id,
                kind="dialogue",
                dialogue_id=self.code,
                context_title=s.context["title"],
                topic=s.context["topic"],
                title=title_from_body(s.text.body),
                body=s.text.body,
                asker_display_name=s.text.display_name,
                submitted_at=s.submitted_at,
                screening_flags=s.text.flags,
                reference=s.reference,
            ),
        )
