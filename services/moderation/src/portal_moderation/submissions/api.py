"""The submissions desk's HTTP API: queues per kind and the editors' actions.

Signed-in editors only (bearer tokens from ``POST /v1/auth/token``). An agency publisher sees
and answers the questions routed to its agency, nothing else.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from portal_contracts.submissions import SubmissionKind
from portal_moderation.api import CurrentEditor
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
from portal_moderation.submissions.schemas import (
    AnswerIn,
    CountOut,
    ReasonIn,
    RevisionIn,
    RouteIn,
    SubmissionDetail,
    SubmissionOut,
    SubmissionPage,
)
from portal_moderation.submissions.usecases import SubmissionNotFound, SubmissionsDesk, sub_item

IdPath = Annotated[str, Path(min_length=1, max_length=64)]
CODE = r"^[a-z0-9][a-z0-9-]*$"


def submissions_desk(request: Request) -> SubmissionsDesk:
    desk: SubmissionsDesk = request.app.state.submissions_desk
    return desk


Desk = Annotated[SubmissionsDesk, Depends(submissions_desk)]

router = APIRouter(
    prefix="/v1/submissions",
    tags=["submissions desk"],
    responses={
        401: {"description": "No or expired token"},
        403: {"description": "The role may not do this, or the item is not this agency's"},
        404: {"description": "No such submission"},
        409: {"description": "The submission changed (revision) or its state forbids the action"},
        422: {"description": "A field is wrong (named in the message)"},
    },
)


def _out(editor: Editor, row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "may": allowed_actions(editor, sub_item(row))}


def _forbidden(exc: Forbidden) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))


async def _visible(desk: SubmissionsDesk, editor: Editor, item_id: str) -> dict[str, Any]:
    async with desk.sessions() as session:
        row = await repo.get_item(session, item_id)
    if row is None:
        raise HTTPException(404, f"submission_id: no submission {item_id}")
    try:
        authorize_sub(editor, SubAction.VIEW, sub_item(row))
    except Forbidden as exc:
        raise _forbidden(exc) from exc
    return row


def _scope(
    editor: Editor, kinds: list[str] | None, agency: str | None
) -> tuple[list[str] | None, str | None, list[str] | None]:
    """The kinds, agency and states an account may list: an agency only its own questions."""
    try:
        authorize_sub(editor, SubAction.VIEW)
    except Forbidden as exc:
        raise _forbidden(exc) from exc
    if editor.role is not Role.AGENCY_PUBLISHER:
        return kinds, agency, None
    if agency is not None and agency != editor.source:
        raise HTTPException(403, f"agency: this account sees only {editor.source}")
    return [SubmissionKind.QA.value], editor.source, [s.value for s in AGENCY_STATES]


@router.get(
    "",
    response_model=SubmissionPage,
    summary="The queues: questions, dialogue questions, feedback, forum posts, comments",
    description="Oldest first by default. `reported=true`: published posts readers reported. "
    "An agency publisher gets only the questions routed to its agency.",
)
async def list_submissions(
    editor: CurrentEditor,
    desk: Desk,
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
    kinds, agency, agency_states = _scope(editor, [k.value for k in kind] if kind else None, agency)
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
async def counts(editor: CurrentEditor, desk: Desk) -> Any:
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
    editor: CurrentEditor,
    desk: Desk,
    format: Literal["csv", "json"] = "csv",
) -> Response:
    if editor.role is Role.AGENCY_PUBLISHER:
        raise HTTPException(403, "role agency_publisher may not export feedback")
    async with desk.sessions() as session:
        rows = await repo.feedback_of(session, document)
    records = feedback_records(rows)
    headers = {"Content-Disposition": f'attachment; filename="gop-y-{document}.{format}"'}
    if format == "json":
        return Response(
            json.dumps({"document": document, "feedback": records}, ensure_ascii=False),
            media_type="application/json",
            headers=headers,
        )
    return Response(feedback_csv(records), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/{submission_id}",
    response_model=SubmissionDetail,
    summary="One submission with its history and reports",
)
async def get_submission(submission_id: IdPath, editor: CurrentEditor, desk: Desk) -> Any:
    row = await _visible(desk, editor, submission_id)
    async with desk.sessions() as session:
        steps = await repo.history(session, submission_id)
        reports = await repo.reports_of(session, submission_id)
    return {**_out(editor, row), "history": steps, "report_list": reports}


async def _act(
    desk: SubmissionsDesk, editor: Editor, submission_id: str, action: SubAction, **kwargs: Any
) -> Any:
    try:
        row = await desk.act(editor, submission_id, action, **kwargs)
    except Forbidden as exc:
        raise _forbidden(exc) from exc
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
    body: RevisionIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk
) -> Any:
    return await _act(desk, editor, submission_id, SubAction.APPROVE, revision=body.revision)


@router.post(
    "/{submission_id}/reject",
    response_model=SubmissionOut,
    summary="Reject, with the reason the submitter will see",
)
async def reject(body: ReasonIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk) -> Any:
    return await _act(
        desk, editor, submission_id, SubAction.REJECT, revision=body.revision, reason=body.reason
    )


@router.post(
    "/{submission_id}/route",
    response_model=SubmissionOut,
    summary="Route a question to the agency that should answer it",
)
async def route(body: RouteIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk) -> Any:
    return await _act(
        desk, editor, submission_id, SubAction.ROUTE, revision=body.revision, agency=body.agency
    )


@router.post(
    "/{submission_id}/pick",
    response_model=SubmissionOut,
    summary="Pick a dialogue question for the guests (shown live)",
)
async def pick(body: RevisionIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk) -> Any:
    return await _act(desk, editor, submission_id, SubAction.PICK, revision=body.revision)


@router.post(
    "/{submission_id}/answer",
    response_model=SubmissionOut,
    summary="Answer a question: a Q&A answer waits for review; a dialogue answer is "
    "published live at once",
)
async def answer(body: AnswerIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk) -> Any:
    return await _act(
        desk,
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
    body: RevisionIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk
) -> Any:
    return await _act(desk, editor, submission_id, SubAction.PUBLISH, revision=body.revision)


@router.post(
    "/{submission_id}/withdraw",
    response_model=SubmissionOut,
    summary="Withdraw something public (a post; an answer: chief editors and admins)",
)
async def withdraw(body: ReasonIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk) -> Any:
    return await _act(
        desk, editor, submission_id, SubAction.WITHDRAW, revision=body.revision, reason=body.reason
    )


@router.post(
    "/{submission_id}/dismiss-reports",
    response_model=SubmissionOut,
    summary="Keep a reported post: its open reports are closed",
)
async def dismiss_reports(
    body: RevisionIn, submission_id: IdPath, editor: CurrentEditor, desk: Desk
) -> Any:
    return await _act(
        desk, editor, submission_id, SubAction.DISMISS_REPORTS, revision=body.revision
    )
