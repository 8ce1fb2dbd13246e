"""Asking a question on a Q&A topic: what it is about (an active topic) and its event."""

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
from portal_engagement.db import qa_topics
from portal_engagement.domain import PRODUCER, title_from_body
from portal_engagement.submissions.intake import NotFound, Stored, Target


@dataclass(frozen=True)
class Question(Target):
    """A question on a Q&A topic, for an agency if the asker names one."""

    topic_code: str
    agency: str | None

    kind: ClassVar[SubmissionKind] = SubmissionKind.QA
    topic: ClassVar[str] = QUESTION_SUBMITTED.name

    @property
    def key(self) -> str:
        return self.topic_code

    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        row = await repo.get_topic(session, qa_topics, self.topic_code)
        if row is None or not row["active"]:
            raise NotFound(f"topic: no Q&A topic {self.topic_code!r} (see GET /v1/qa/topics)")
        return row

    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"topic": self.topic_code, "agency": self.agency}

    def event(self, s: Stored) -> Envelope:
        return QuestionSubmittedEvent(
            producer=PRODUCER,
            subject=s.id,
            data=QuestionSubmitted(
                question_id=s.id,
                kind="qa",
                topic=self.topic_code,
                agency=self.agency,
                title=s.text.title or title_from_body(s.text.body),
                body=s.text.body,
                asker_display_name=s.text.display_name,
                submitted_at=s.submitted_at,
                screening_flags=s.text.flags,
                reference=s.reference,
            ),
        )
