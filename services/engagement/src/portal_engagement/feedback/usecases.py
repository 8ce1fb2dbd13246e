"""Giving feedback on a document: what it is about (a document open for feedback, and one of
its sections) and its event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.envelope import Envelope
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionSubmitted,
    SubmissionSubmittedEvent,
)
from portal_contracts.topics import SUBMISSION_SUBMITTED
from portal_engagement import repository as repo
from portal_engagement.domain import PRODUCER, feedback_refusal
from portal_engagement.screening import Problem
from portal_engagement.submissions.intake import Closed, NotFound, Refused, Stored, Target


@dataclass(frozen=True)
class Feedback(Target):
    """Feedback on a document, or on one of its sections."""

    code: str
    section: str | None

    kind: ClassVar[SubmissionKind] = SubmissionKind.FEEDBACK
    topic: ClassVar[str] = SUBMISSION_SUBMITTED.name

    @property
    def key(self) -> str:
        return f"{self.code}/{self.section or ''}"

    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        row = await repo.get_document(session, self.code)
        if row is None:
            raise NotFound(f"document: no document {self.code!r} open for feedback")
        refusal = feedback_refusal(row["opens_at"], row["deadline"], now)
        if refusal:
            raise Closed(refusal)
        return {**row, "section_title": self.section_title(row)}

    def section_title(self, document: dict[str, Any]) -> str | None:
        if self.section is None:
            return None
        titles: dict[str, str] = {s["code"]: s["title"] for s in document["sections"]}
        if self.section not in titles:
            problem = Problem(
                "section",
                f"the document has no section {self.section!r} "
                f"(it has {', '.join(titles) or 'none'})",
                "unknown_section",
            )
            raise Refused([problem])
        return titles[self.section]

    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"document_code": self.code, "section_code": self.section}

    def event(self, s: Stored) -> Envelope:
        return SubmissionSubmittedEvent(
            producer=PRODUCER,
            subject=s.id,
            data=SubmissionSubmitted(
                submission_id=s.id,
                kind="feedback",
                context_id=self.code,
                context_title=s.context["title"],
                section_id=self.section,
                section_title=s.context["section_title"],
                body=s.text.body,
                author_display_name=s.text.display_name,
                submitted_at=s.submitted_at,
                screening_flags=s.text.flags,
                reference=s.reference,
            ),
        )
