"""What engagement learns from the other services: moderation's steps and answers (a step on
the submitter's status link, a post or answer made public or withdrawn, the live dialogue's
events) and which articles are published (they take comments).

The submissions themselves are taken by ``submissions.intake`` and each feature's target.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.questions import QuestionAnsweredEvent
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionModeratedEvent,
    SubmissionState,
)
from portal_engagement import repository as repo
from portal_engagement.domain import (
    QUESTION_KINDS,
    Current,
    after_moderation,
    answer_applies,
    answer_visible,
)
from portal_runtime.batch import Message, newest_per_key
from portal_runtime.unit_of_work import UnitOfWork


def _current(row: dict[str, Any]) -> Current:
    return Current(
        kind=SubmissionKind(row["kind"]),
        state=row["state"],
        moderation_revision=row["moderation_revision"],
        answer_revision=row["answer_revision"],
        public=row["public"],
    )


class Engagement:
    """The batch handlers of moderation's answers and steps and of published articles."""

    async def on_answered(
        self, batch: list[Message[QuestionAnsweredEvent]], uow: UnitOfWork
    ) -> None:
        """Answers from the desk: the Q&A page, the dialogue transcript and its live stream."""
        session = await uow.session()
        for message in batch:  # offset order: a question's answers arrive in revision order
            data = message.event.data
            if message.event.subject != data.question_id:
                uow.reject(message, "subject: is not the question id", "invalid")
                continue
            row = await repo.lock_submission(session, data.question_id)
            if row is None or SubmissionKind(row["kind"]) not in QUESTION_KINDS:
                uow.reject(
                    message,
                    f"question_id: no question {data.question_id} was submitted here",
                    "unknown",
                )
                continue
            current = _current(row)
            if not answer_applies(current, data.revision):
                continue  # an older answer than the one shown
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

    async def on_moderated(
        self, batch: list[Message[SubmissionModeratedEvent]], uow: UnitOfWork
    ) -> None:
        """Moderation steps: a step on the submitter's status link; posts become public."""
        session = await uow.session()
        for message in batch:
            data = message.event.data
            if message.event.subject != data.submission_id:
                uow.reject(message, "subject: is not the submission id", "invalid")
                continue
            row = await repo.lock_submission(session, data.submission_id)
            if row is None:
                uow.reject(
                    message,
                    f"submission_id: no submission {data.submission_id} was made here",
                    "unknown",
                )
                continue
            after = after_moderation(_current(row), data.revision, data.state)
            if after is None:
                continue  # an older step than the one recorded
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

    async def on_articles(
        self, batch: list[Message[ArticlePublishedEvent]], uow: UnitOfWork
    ) -> None:
        """Which articles take comments (only public ones): the newest revision of each, kept
        unless a newer one is already there (one statement for the batch)."""
        newest = newest_per_key(batch, lambda e: e.data.article_id, lambda e: e.data.revision)
        await repo.upsert_articles(
            await uow.session(),
            [
                {
                    "article_id": d.article_id,
                    "revision": d.revision,
                    "state": d.state.value,
                    "slug": d.slug,
                    "url_path": d.url_path,
                    "title": d.article.title if d.article else None,
                }
                for d in (m.event.data for m in newest.values())
            ],
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
