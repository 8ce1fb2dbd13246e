"""Opening a thread on a forum topic and replying to a published thread: what each is about
and its event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.envelope import Envelope
from portal_contracts.submissions import SubmissionKind
from portal_contracts.topics import SUBMISSION_SUBMITTED
from portal_engagement import repository as repo
from portal_engagement.db import forum_topics
from portal_engagement.submissions.intake import NotFound, Stored, Target, post_event


@dataclass(frozen=True)
class Thread(Target):
    """A new thread on an active forum topic."""

    topic_code: str

    kind: ClassVar[SubmissionKind] = SubmissionKind.FORUM_THREAD
    topic: ClassVar[str] = SUBMISSION_SUBMITTED.name

    @property
    def key(self) -> str:
        return self.topic_code

    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        row = await repo.get_topic(session, forum_topics, self.topic_code)
        if row is None or not row["active"]:
            raise NotFound(f"topic: no forum topic {self.topic_code!r} (see GET /v1/forum/topics)")
        return row

    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"forum_topic": self.topic_code}

    def event(self, s: Stored) -> Envelope:
        return post_event("forum_thread", self.topic_code, s.context.get("name"), s)


@dataclass(frozen=True)
class Reply(Target):
    """A reply to a published thread."""

    thread_id: str

    kind: ClassVar[SubmissionKind] = SubmissionKind.FORUM_REPLY
    topic: ClassVar[str] = SUBMISSION_SUBMITTED.name

    @property
    def key(self) -> str:
        return self.thread_id

    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        row = await repo.public_submission(session, self.thread_id, SubmissionKind.FORUM_THREAD)
        if row is None:
            raise NotFound(f"thread_id: no published thread {self.thread_id!r}")
        return row

    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "forum_topic": context["forum_topic"]}

    def event(self, s: Stored) -> Envelope:
        return post_event("forum_reply", self.thread_id, s.context.get("title"), s)
