"""Commenting on an article: what it is about (a published article) and its event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import PublishedState
from portal_contracts.envelope import Envelope
from portal_contracts.submissions import SubmissionKind
from portal_contracts.topics import SUBMISSION_SUBMITTED
from portal_engagement import repository as repo
from portal_engagement.submissions.intake import NotFound, Stored, Target, post_event


@dataclass(frozen=True)
class Comment(Target):
    """A comment on a published article."""

    article_id: str

    kind: ClassVar[SubmissionKind] = SubmissionKind.COMMENT
    topic: ClassVar[str] = SUBMISSION_SUBMITTED.name

    @property
    def key(self) -> str:
        return self.article_id

    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        row = await repo.get_article(session, self.article_id)
        if row is None or row["state"] != PublishedState.PUBLISHED.value:
            raise NotFound(f"article_id: no published article {self.article_id!r}")
        return row

    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"article_id": self.article_id}

    def event(self, s: Stored) -> Envelope:
        return post_event("comment", self.article_id, s.context.get("title"), s)
