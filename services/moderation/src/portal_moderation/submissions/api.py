"""The submissions desk's HTTP API: queues per kind and the editors' actions.

Signed-in editors only (bearer tokens from ``POST /v1/auth/token``). An agency publisher sees
and answers the questions routed to its agency, nothing else.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from portal_contracts.articles import SourceCode
from portal_contracts.submissions import SubmissionKind
from portal_moderation.api import editor_dependency
from portal_moderation.domain import Editor, Forbidden, Role
from portal_moderation.submissions import repository as repo
from portal_moderation.submissions.domain import (
    AGENCY_STATES,
    SubAction,
    SubConflict,
    SubInvalid,
    SubState,
    allowed_actions,
    authorize_sub,
    feedback_csv,
    feedback_records,
)
from portal_moderation.submissions.usecases import (
    SubmissionNotFound,
    SubmissionsDesk,
    sub_item,
)
from portal_moderation.usecases import Accounts
from portal_runtime.problems import NulFree

ID_PATH = Path(min_length=1, max_length=64)
CODE = r"^[a-z0-9][a-z0-9-]*$"


class Model(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubmissionOut(BaseModel):
    id: str
    kind: SubmissionKind
    state: SubState
    revision: int = Field(description="Send it back with an action (the optimistic lock).")
    reference: str | None = Field(description="The acknowledgement number the submitter got.")
    flags: list[str] = Field(description="Screening: banned_word:…, suspect_word:…, link:…")
    flagged: bool
    topic: str | None
    agency: str | None = Field(description="The agency the asker addressed.")
    routed_agency: str | None
    context_id: str | None = Field(
        description="Dialogue, feedback document, forum topic, thread or article it is about."
    )
    context_title: str | None
    section_id: str | None
    section_title: str | None
    title: str | None
    body: str
    author: str | None = Field(description="The public name the submitter chose, if any.")
    answer_text: str | None
    answer_html: str | None
    answered_by: str | None
    answered_at: datetime | None
    published_revision: int | None
    published_at: datetime | None
    reason: str | None
    reports: int
    open_reports: int
    submitted_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    may: list[SubAction] = Field(description="What the signed-in account may do on it now.")


class SubmissionPage(BaseModel):
    items: list[SubmissionOut]
    next_cursor: str | None


class CountOut(BaseModel):
    kind: SubmissionKind
    state: SubState
    count: int
    flagged: int
    reported: int
    oldest: datetime | None


class RevisionIn(Model):
    revision: int = Field(ge=0, description="The revision you saw (optimistic lock).")


class ReasonIn(RevisionIn):
    reason: str = Field(
        min_length=1, max_length=2000, description="Shown to the submitter on their status link."
    )


class RouteIn(RevisionIn):
    agency: SourceCode


class AnswerIn(RevisionIn):
    answer: str = Field(
        min_length=1,
        max_length=20_000,
        description="Plain text; blank lines separate paragraphs (no markup is kept).",
    )
    answered_by: str | None = Field(
        default=None,
        max_length=300,
        description="Who answers (a dialogue guest, an agency); default: the routed agency or "
        "the editorial board. An agency publisher always answers for its agency.",
    )


class HistoryOut(BaseModel):
    action: str
    revision: int
    actor: str
    actor_role: str | None
    reason: str | None
    agency: str | None
    decided_at: datetime


class ReportOut(BaseModel):
    report_id: str
    reason: str
    note: str | None
    reported_at: datetime


class SubmissionDetail(SubmissionOut):
    history: list[HistoryOut]
    report_list: list[ReportOut]


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or expired token"},
    403: {"description": "The role may not do this, or the item is not this agency's"},
    404: {"description": "No such submission"},
    409: {"description": "The submission changed (revision) or its state forbids the action"},
    422: {"description": "A field is wrong (named in the message)"},
}


def _may(editor: Editor, row: dict[str, Any]) -> list[SubAction]:
    return allowed_actions(editor, sub_item(row))


def _out(editor: Editor, row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "may": _may(editor, row)}


def submissions_router(accounts: Accounts, desk: SubmissionsDesk) -> APIRouter:
    router = APIRouter(prefix="/v1/submissions", tags=["submissions desk"], responses=_ERRORS)
    current_editor = editor_dependency(accounts)

    def forbidden(exc: Forbidden) -> HTTPException:
        return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))

    async def visible(editor: Editor, item_id: str) -> dict[str, Any]:
        async with desk.sessions() as session:
            row = await repo.get_item(session, item_id)
        if row is None:
            raise HTTPException(404, f"submission_id: no submission {item_id}")
        try:
            authorize_sub(editor, SubAction.VIEW, sub_item(row))
        except Forbidden as exc:
            raise forbidden(exc) from exc
        return row

    @router.get(
        "",
        response_model=SubmissionPage,
        summary="The queues: questions, dialogue questions, feedback, forum posts, comments",
        description="Oldest first by default. `reported=true`: published posts readers reported. "
        "An agency publisher gets only the questions routed to its agency.",
    )
    async def list_submissions(
        editor: Editor = Depends(current_editor),
        kind: Annotated[list[SubmissionKind] | None, Query()] = None,
        state: SubState | None = None,
        flagged: bool | None = None,
        reported: bool = False,
        agency: Annotated[str | None, Query(pattern=CODE, max_length=64)] = None,
        context: Annotated[str | None, Query(max_length=100)] = None,
        order: Literal["oldest", "newest"] = "oldest",
        cursor: Annotated[str | None, Query(max_length=500)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Any:
        try:
            authorize_sub(editor, SubAction.VIEW)
        except Forbidden as exc:
            raise forbidden(exc) from exc
        kinds = [k.value for k in kind] if kind else None
        agency_states = None
        if editor.role is Role.AGENCY_PUBLISHER:
            if agency is not None and agency != editor.source:
                raise HTTPException(403, f"agency: this account sees only {editor.source}")
            agency, kinds = editor.source, [SubmissionKind.QA.value]
            agency_states = [s.value for s in AGENCY_STATES]
        try:
            async with desk.sessions() as session:
                page = await repo.list_items(
                    session,
                    kinds=kinds,
                    state=state.value if state else None,
                    flagged=flagged,
                    reported=reported,
                    agency=agency,
                    context=context,
                    agency_states=agency_states,
                    newest_first=order == "newest",
                    cursor=cursor,
                    limit=limit,
                )
        except repo.BadCursor as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"items": [_out(editor, r) for r in page.items], "next_cursor": page.next_cursor}

    @router.get(
        "/counts",
        response_model=list[CountOut],
        summary="How many submissions wait, per kind and state (flagged, reported, oldest)",
    )
    async def counts(editor: Editor = Depends(current_editor)) -> Any:
        agency = editor.source if editor.role is Role.AGENCY_PUBLISHER else None
        async with desk.sessions() as session:
            return await repo.counts(session, agency=agency)

    @router.get(
        "/feedback/export",
        summary="Feedback on a document, per section, for the officials who asked",
        description="CSV (UTF-8 with BOM, opens in spreadsheet programs) or JSON; rejected "
        "feedback is left out. No contact details: the officials ask the portal for those.",
        responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
    )
    async def export_feedback(
        document: Annotated[str, Query(pattern=CODE, max_length=64)],
        format: Literal["csv", "json"] = "csv",
        editor: Editor = Depends(current_editor),
    ) -> Response:
        if editor.role is Role.AGENCY_PUBLISHER:
            raise HTTPException(403, "role agency_publisher may not export feedback")
        async with desk.sessions() as session:
            rows = await repo.feedback_of(session, document)
        records = feedback_records(rows)
        filename = f"gop-y-{document}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        if format == "json":
            return Response(
                json.dumps({"document": document, "feedback": records}, ensure_ascii=False),
                media_type="application/json",
                headers=headers,
            )
        return Response(
            feedback_csv(records), media_type="text/csv; charset=utf-8", headers=headers
        )

    @router.get(
        "/{submission_id}",
        response_model=SubmissionDetail,
        summary="One submission with its history and reports",
    )
    async def get_submission(
        submission_id: Annotated[str, ID_PATH], editor: Editor = Depends(current_editor)
    ) -> Any:
        row = await visible(editor, submission_id)
        async with desk.sessions() as session:
            steps = await repo.history(session, submission_id)
            reports = await repo.reports_of(session, submission_id)
        return {**_out(editor, row), "history": steps, "report_list": reports}

    async def act(editor: Editor, submission_id: str, action: SubAction, **kwargs: Any) -> Any:
        try:
            row = await desk.act(editor, submission_id, action, **kwargs)
        except Forbidden as exc:
            raise forbidden(exc) from exc
        except SubmissionNotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except SubConflict as exc:
            raise HTTPException(
                409, {"reason": exc.reason, "revision": exc.revision, "state": exc.state.value}
            ) from exc
        except SubInvalid as exc:
            raise HTTPException(422, str(exc)) from exc
        return _out(editor, row)

    @router.post(
        "/{submission_id}/approve",
        response_model=SubmissionOut,
        summary="Approve: a post is published; a question or feedback is accepted",
    )
    async def approve(
        body: RevisionIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(editor, submission_id, SubAction.APPROVE, revision=body.revision)

    @router.post(
        "/{submission_id}/reject",
        response_model=SubmissionOut,
        summary="Reject, with the reason the submitter will see",
    )
    async def reject(
        body: ReasonIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(
            editor, submission_id, SubAction.REJECT, revision=body.revision, reason=body.reason
        )

    @router.post(
        "/{submission_id}/route",
        response_model=SubmissionOut,
        summary="Route a question to the agency that should answer it",
    )
    async def route(
        body: RouteIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(
            editor, submission_id, SubAction.ROUTE, revision=body.revision, agency=body.agency
        )

    @router.post(
        "/{submission_id}/pick",
        response_model=SubmissionOut,
        summary="Pick a dialogue question for the guests (shown live)",
    )
    async def pick(
        body: RevisionIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(editor, submission_id, SubAction.PICK, revision=body.revision)

    @router.post(
        "/{submission_id}/answer",
        response_model=SubmissionOut,
        summary="Answer a question: a Q&A answer waits for review; a dialogue answer is "
        "published live at once",
    )
    async def answer(
        body: AnswerIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(
            editor,
            submission_id,
            SubAction.ANSWER,
            revision=body.revision,
            answer=body.answer,
            answered_by=body.answered_by,
        )

    @router.post(
        "/{submission_id}/publish",
        response_model=SubmissionOut,
        summary="Publish a reviewed Q&A answer (editors and up)",
    )
    async def publish(
        body: RevisionIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(editor, submission_id, SubAction.PUBLISH, revision=body.revision)

    @router.post(
        "/{submission_id}/withdraw",
        response_model=SubmissionOut,
        summary="Withdraw something public (a post; an answer: chief editors and admins)",
    )
    async def withdraw(
        body: ReasonIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(
            editor, submission_id, SubAction.WITHDRAW, revision=body.revision, reason=body.reason
        )

    @router.post(
        "/{submission_id}/dismiss-reports",
        response_model=SubmissionOut,
        summary="Keep a reported post: its open reports are closed",
    )
    async def dismiss_reports(
        body: RevisionIn,
        submission_id: Annotated[str, ID_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(editor, submission_id, SubAction.DISMISS_REPORTS, revision=body.revision)

    return router
