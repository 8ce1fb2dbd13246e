"""What engagement learns from the other services: moderation's steps and answers (a step on
the submitter's status link, a post or answer made public or withdrawn, the live dialogue's
events) and which articles are published (they take comments).

The submissions themselves are taken by ``submissions.intake`` and each feature's target.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.questions import QuestionAnsweredEvent
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionModeratedEvent,
    SubmissionState,
)
from portal_contracts.topics import QUESTION_ANSWERED, SUBMISSION_MODERATED
from portal_engagement import repository as repo
from portal_engagement.db import outbox
from portal_engagement.domain import (
    QUESTION_KINDS,
    Current,
    after_moderation,
    answer_applies,
    answer_visible,
)
from portal_runtime.kafka import PermanentError
from portal_runtime.logs import get_logger

log = get_logger(__name__)


def _current(row: dict[str, Any]) -> Current:
    return Current(
        kind=SubmissionKind(row["kind"]),
        state=row["state"],
        moderation_revision=row["moderation_revision"],
        answer_revision=row["answer_revision"],
        public=row["public"],
    )


class Engagement:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def on_answered(self, event: QuestionAnsweredEvent) -> None:
        data = event.data
        async with self.sessions.begin() as session:
            if not await outbox.first_time(session, event.event_id, QUESTION_ANSWERED.name):
                return
            row = await repo.lock_submission(session, data.question_id)
            if row is None or SubmissionKind(row["kind"]) not in QUESTION_KINDS:
                raise PermanentError(
                    f"question_id: no question {data.question_id} was submitted here", "unknown"
                )
            current = _current(row)
            if not answer_applies(current, data.revision):
                log.info(
                    "stale_answer_ignored", question_id=data.question_id, revision=data.revision
                )
                return
            public = answer_visible(current, data.revision, data.state == "published")
            values: dict[str, Any] = {
                "answer_revision": data.revision,
                "answer_html": data.answer_html,
                "answered_by": data.answered_by,
                "answered_at": data.answered_at,
                "public": public,
                "routed_agency": row["routed_agency"] or data.agency,
            }
            if public and row["published_at"] is None:
                values["published_at"] = data.answered_at
            await repo.update_submission(session, data.question_id, values)
            if row["dialogue_code"] and (public or row["public"]):
                payload = _live_payload({**row, **values})
                await repo.add_dialogue_event(
                    session,
                    row["dialogue_code"],
                    data.question_id,
                    "answer" if public else "withdrawn",
                    payload,
                )
        log.info(
            "answer_received", question_id=data.question_id, revision=data.revision, public=public
        )

    async def on_moderated(self, event: SubmissionModeratedEvent) -> None:
        data = event.data
        async with self.sessions.begin() as session:
            if not await outbox.first_time(session, event.event_id, SUBMISSION_MODERATED.name):
                return
            row = await repo.lock_submission(session, data.submission_id)
            if row is None:
                raise PermanentError(
                    f"submission_id: no submission {data.submission_id} was made here", "unknown"
                )
            after = after_moderation(_current(row), data.revision, data.state)
            if after is None:
                log.info(
                    "stale_step_ignored", submission_id=data.submission_id, revision=data.revision
                )
                return
            values: dict[str, Any] = {
                "state": after.state,
                "moderation_revision": data.revision,
                "public": after.public,
            }
            if data.state in (SubmissionState.REJECTED, SubmissionState.WITHDRAWN):
                values["reason"] = data.reason
            if data.state is SubmissionState.ROUTED and data.agency:
                values["routed_agency"] = data.agency
            if after.public and row["published_at"] is None:
                values["published_at"] = data.moderated_at
            await repo.update_submission(session, data.submission_id, values)
            await repo.add_step(
                session,
                {
                    "submission_id": data.submission_id,
                    "state": data.state.value,
                    "revision": data.revision,
                    "agency": data.agency,
                    "note": data.reason,
                    "at": data.moderated_at,
                },
            )
            code = row["dialogue_code"]
            if code and data.state is SubmissionState.PICKED:
                await repo.add_dialogue_event(
                    session, code, data.submission_id, "question", _live_payload({**row, **values})
                )
            elif code and row["public"] and not after.public:
                await repo.add_dialogue_event(
                    session, code, data.submission_id, "withdrawn", _live_payload({**row, **values})
                )
        log.info(
            "moderation_step_received",
            submission_id=data.submission_id,
            state=data.state.value,
            revision=data.revision,
        )

    async def on_article(self, event: ArticlePublishedEvent) -> None:
        data = event.data
        async with self.sessions.begin() as session:
            await repo.upsert_article(
                session,
                {
                    "article_id": data.article_id,
                    "revision": data.revision,
                    "state": data.state.value,
                    "slug": data.slug,
                    "url_path": data.url_path,
                    "title": data.article.title if data.article else None,
                },
            )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _live_payload(row: dict[str, Any]) -> dict[str, Any]:
    """What a live reader gets: the public question and answer, nothing about the asker but
    the name they chose to show."""
    return {
        "question_id": row["id"],
        "question": row["body"],
        "asker": row["display_name"],
        "asked_at": _iso(row["submitted_at"]),
        "answer_html": row.get("answer_html"),
        "answered_by": row.get("answered_by"),
        "answered_at": _iso(row.get("answered_at")),
    }
