"""The submissions desk: public submissions come in from engagement, editors decide.

Every decision and the events it causes commit together (the outbox): ``submission.moderated``
for each step, ``question.answered`` when an answer is published or withdrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.questions import QuestionSubmittedEvent
from portal_contracts.submissions import (
    SubmissionKind,
    SubmissionReportedEvent,
    SubmissionState,
    SubmissionSubmittedEvent,
)
from portal_contracts.topics import (
    QUESTION_ANSWERED,
    SUBMISSION_MODERATED,
)
from portal_moderation.db import outbox
from portal_moderation.domain import Editor, Role
from portal_moderation.submissions import repository as repo
from portal_moderation.submissions.domain import (
    EDITORS_DESK,
    POST_KINDS,
    SubAction,
    SubInvalid,
    SubItem,
    SubOutcome,
    SubState,
    answer_html,
    answered_event,
    authorize_sub,
    check_answer,
    decide_sub,
    moderated_event,
)
from portal_runtime.batch import Message
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger
from portal_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)


class SubmissionNotFound(Exception):
    pass


def sub_item(row: dict[str, Any]) -> SubItem:
    return SubItem(
        kind=SubmissionKind(row["kind"]),
        state=SubState(row["state"]),
        revision=row["revision"],
        routed_agency=row["routed_agency"],
        published_revision=row["published_revision"],
        open_reports=row["open_reports"],
    )


class SubmissionsDesk:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    # ---------------------------------------------------------------- incoming

    async def _receive(self, session: AsyncSession, values: dict[str, Any]) -> None:
        flags = values.get("flags") or []
        inserted = await repo.insert_item(
            session,
            {**values, "state": SubState.PENDING.value, "revision": 0, "flagged": bool(flags)},
        )
        if inserted:
            await repo.add_decision(
                session,
                {
                    "submission_id": values["id"],
                    "revision": 0,
                    "action": "received",
                    "actor": "public",
                    "reason": ", ".join(flags) or None,
                },
            )

    async def receive_questions(
        self, batch: list[Message[QuestionSubmittedEvent]], uow: UnitOfWork
    ) -> None:
        session = await uow.session()
        for message in batch:
            event, data = message.event, message.event.data
            if event.subject != data.question_id:
                uow.reject(message, "subject: is not the question id", "invalid")
                continue
            await self._receive(
                session,
                {
                    "id": data.question_id,
                    "kind": data.kind,
                    "reference": data.reference,
                    "flags": data.screening_flags,
                    "topic": data.topic,
                    "agency": data.agency,
                    "context_id": data.dialogue_id,
                    "context_title": data.context_title,
                    "title": data.title,
                    "body": data.body,
                    "author": data.asker_display_name,
                    "submitted_at": data.submitted_at,
                },
            )

    async def receive_posts(
        self, batch: list[Message[SubmissionSubmittedEvent]], uow: UnitOfWork
    ) -> None:
        session = await uow.session()
        for message in batch:
            event, data = message.event, message.event.data
            if event.subject != data.submission_id:
                uow.reject(message, "subject: is not the submission id", "invalid")
                continue
            await self._receive(
                session,
                {
                    "id": data.submission_id,
                    "kind": data.kind,
                    "reference": data.reference,
                    "flags": data.screening_flags,
                    "context_id": data.context_id,
                    "context_title": data.context_title,
                    "section_id": data.section_id,
                    "section_title": data.section_title,
                    "title": data.title,
                    "body": data.body,
                    "author": data.author_display_name,
                    "submitted_at": data.submitted_at,
                },
            )

    async def receive_reports(
        self, batch: list[Message[SubmissionReportedEvent]], uow: UnitOfWork
    ) -> None:
        session = await uow.session()
        for message in batch:
            data = message.event.data
            row = await repo.lock_item(session, data.submission_id)
            if row is None or SubmissionKind(row["kind"]) not in POST_KINDS:
                uow.reject(
                    message, f"submission_id: no post {data.submission_id} in the desk", "unknown"
                )
                continue
            await repo.add_report(
                session,
                {
                    "report_id": data.report_id,
                    "submission_id": data.submission_id,
                    "reason": data.reason.value,
                    "note": data.note,
                    "reported_at": data.reported_at,
                },
            )

    # ---------------------------------------------------------------- decisions

    async def act(
        self,
        editor: Editor,
        item_id: str,
        action: SubAction,
        *,
        revision: int | None,
        reason: str | None = None,
        agency: str | None = None,
        answer: str | None = None,
        answered_by: str | None = None,
    ) -> dict[str, Any]:
        """An editor's decision; returns the item as it is afterwards."""
        authorize_sub(editor, action)  # the role first: nothing is looked up for a wrong role
        async with self.sessions.begin() as session:
            row = await repo.lock_item(session, item_id)
            if row is None:
                raise SubmissionNotFound(f"submission_id: no submission {item_id}")
            item = sub_item(row)
            authorize_sub(editor, action, item)
            outcome = decide_sub(item, action, revision)
            now = utcnow()
            values: dict[str, Any] = {
                "state": outcome.state.value,
                "revision": outcome.revision,
                "published_revision": outcome.published_revision,
                "decided_by": editor.username,
                "decided_at": now,
            }
            if action in (SubAction.REJECT, SubAction.WITHDRAW):
                if not reason or not reason.strip():
                    raise SubInvalid("reason: say why (the submitter sees it)")
                values["reason"] = reason.strip()
            if action is SubAction.ROUTE:
                if not agency or await repo.source_name(session, agency) is None:
                    raise SubInvalid(f"agency: no agency {agency!r} (see the sources list)")
                values["routed_agency"] = agency
            if action is SubAction.ANSWER:
                text = check_answer(answer or "")
                values.update(
                    answer_text=text,
                    answer_html=answer_html(text),
                    answered_by=await self._answered_by(session, editor, row, answered_by),
                    answer_author=editor.username,
                    answered_at=now,
                )
            if action is SubAction.DISMISS_REPORTS:
                values["open_reports"] = 0
            if outcome.state is SubState.PUBLISHED and (
                row["published_at"] is None or outcome.answer == "published"
            ):
                values["published_at"] = now
            current = {**row, **values}
            event_id = await self._emit(session, item, current, outcome, now, values.get("reason"))
            updated = await repo.save_item(session, item_id, values)
            await repo.add_decision(
                session,
                {
                    "submission_id": item_id,
                    "revision": outcome.revision,
                    "action": action.value,
                    "actor": editor.username,
                    "actor_role": editor.role.value,
                    "reason": values.get("reason"),
                    "agency": values.get("routed_agency"),
                    "event_id": event_id,
                    "decided_at": now,
                },
            )
        outbox.notify()
        log.info(
            "submission_decision",
            submission_id=item_id,
            kind=item.kind.value,
            action=action.value,
            state=outcome.state.value,
            editor=editor.username,
        )
        return updated

    @staticmethod
    async def _emit(
        session: AsyncSession,
        item: SubItem,
        current: dict[str, Any],
        outcome: SubOutcome,
        now: datetime,
        reason: str | None,
    ) -> UUID | None:
        """The decision's events: a step on the status link, the answer made public or
        withdrawn. Returns the step event's id."""
        event_id = None
        if outcome.step is not None:
            routed = outcome.step is SubmissionState.ROUTED
            step_event = moderated_event(
                submission_id=current["id"],
                kind=item.kind,
                revision=outcome.revision,
                step=outcome.step,
                at=now,
                reason=reason,
                agency=current["routed_agency"] if routed else None,
            )
            await outbox.add(session, SUBMISSION_MODERATED.name, step_event)
            event_id = step_event.event_id
        if outcome.answer is not None:
            await outbox.add(
                session,
                QUESTION_ANSWERED.name,
                answered_event(
                    question_id=current["id"],
                    kind=item.kind,
                    revision=outcome.revision,
                    state=outcome.answer,
                    topic=current["topic"] or "khac",
                    agency=current["routed_agency"] or current["agency"],
                    title=current["title"] or current["body"][:120],
                    question_body=current["body"],
                    answer=current["answer_html"] or "",
                    answered_by=current["answered_by"] or EDITORS_DESK,
                    asked_at=current["submitted_at"],
                    answered_at=now,
                    dialogue_id=current["context_id"],
                ),
            )
        return event_id

    async def _answered_by(
        self, session: AsyncSession, editor: Editor, row: dict[str, Any], given: str | None
    ) -> str:
        """Who the public sees as the answerer: an agency publisher answers for its agency."""
        if editor.role is Role.AGENCY_PUBLISHER and editor.source:
            return await repo.source_name(session, editor.source) or editor.source
        if given and given.strip():
            return given.strip()[:300]
        if row["routed_agency"]:
            return await repo.source_name(session, row["routed_agency"]) or row["routed_agency"]
        return EDITORS_DESK
