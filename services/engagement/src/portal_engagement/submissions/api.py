"""Routes every feature shares: the submitter's private status link, reporting a published post,
topics (of the Q&A and of the forum) for operators, and contact details for the officials."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from sqlalchemy import Table

from portal_contracts.submissions import SubmissionKind
from portal_engagement import repository as repo
from portal_engagement.db import forum_topics, qa_topics
from portal_engagement.domain import status_label
from portal_engagement.screening import clean_name
from portal_engagement.submissions.gate import READ, Gate, GateDep, client_ip
from portal_engagement.submissions.intake import NotFound
from portal_engagement.submissions.schemas import (
    AnswerOut,
    CodePath,
    ContactOut,
    ErrorOut,
    IdPath,
    ReportIn,
    ReportOut,
    StatusOut,
    StepOut,
    TopicAdminOut,
    TopicIn,
)
from portal_runtime.auth import make_admin_router
from portal_runtime.logs import get_logger

log = get_logger(__name__)

router = APIRouter(tags=["status"])
admin_router = make_admin_router()

TokenPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$")]
TOPIC_TABLES: dict[str, Table] = {"qa": qa_topics, "forum": forum_topics}
# What a submission is about, as the status link names it: (name, column).
ABOUT = (
    ("topic", "topic"),
    ("agency", "routed_agency"),
    ("dialogue", "dialogue_code"),
    ("document", "document_code"),
    ("section", "section_code"),
    ("forum_topic", "forum_topic"),
    ("thread", "thread_id"),
    ("article", "article_id"),
)


async def report_post(
    gate: Gate,
    post_id: str,
    kinds: frozenset[SubmissionKind],
    body: ReportIn,
    request: Request,
) -> ReportOut:
    """A reader reports a published post (once per reader; again is not counted)."""
    note = clean_name(body.note) if body.note else None
    try:
        report_id, new = await gate.intake.report(
            post_id, kinds, reason=body.reason, note=note, client_ip=client_ip(request)
        )
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return ReportOut(
        report_id=report_id,
        received=new,
        message="Thank you: the moderators will look at it."
        if new
        else "You have already reported this post.",
    )


def public_path(row: dict[str, Any]) -> str | None:
    """Where the public sees the submission, once published."""
    if not row["public"]:
        return None
    kind = SubmissionKind(row["kind"])
    return {
        SubmissionKind.QA: f"/v1/qa/questions/{row['id']}",
        SubmissionKind.DIALOGUE: f"/v1/dialogues/{row['dialogue_code']}/transcript",
        SubmissionKind.FORUM_THREAD: f"/v1/forum/threads/{row['id']}",
        SubmissionKind.FORUM_REPLY: f"/v1/forum/threads/{row['thread_id']}",
        SubmissionKind.COMMENT: f"/v1/articles/{row['article_id']}/comments",
    }.get(kind)


def status_out(row: dict[str, Any], steps: list[dict[str, Any]]) -> StatusOut:
    about = {name: row[column] for name, column in ABOUT if row[column]}
    if "agency" not in about and row["agency"]:
        about["agency"] = row["agency"]
    answer = None
    if row["public"] and row["answer_html"]:
        answer = AnswerOut.model_validate(row)
    received = StepOut(
        state="received", label=status_label("received", row["held"]), at=row["submitted_at"]
    )
    return StatusOut(
        reference=row["reference"],
        kind=SubmissionKind(row["kind"]),
        state=row["state"],
        label=status_label(row["state"], row["held"]),
        held_for_review=row["held"],
        submitted_at=row["submitted_at"],
        title=row["title"],
        body=row["body"],
        about=about,
        steps=[
            received,
            *(
                StepOut.model_validate({**s, "label": status_label(s["state"], False)})
                for s in steps
            ),
        ],
        reason=row["reason"],
        answer=answer,
        public_path=public_path(row),
    )


@router.get(
    "/v1/status/{token}",
    response_model=StatusOut,
    summary="The submitter's private status link: every step of their submission",
    description="The token comes in the receipt of the submission; it is the only key.",
    responses={404: {"model": ErrorOut, "description": "No submission has this link"}},
    **READ,
)
async def get_status(token: TokenPath, gate: GateDep) -> Any:
    found = await gate.intake.status(token)
    if found is None:
        raise HTTPException(404, "token: no submission has this status link")
    return status_out(*found)


@admin_router.put(
    "/{area}-topics/{code}",
    response_model=TopicAdminOut,
    summary="Create or update a Q&A or forum topic (deactivate to hide it)",
)
async def put_topic(
    area: Literal["qa", "forum"], code: CodePath, body: TopicIn, gate: GateDep
) -> Any:
    table = TOPIC_TABLES[area]
    async with gate.intake.sessions.begin() as session:
        await repo.upsert_topic(session, table, code, body.model_dump())
        return await repo.get_topic(session, table, code)


@admin_router.get(
    "/{area}-topics",
    response_model=list[TopicAdminOut],
    summary="Every Q&A or forum topic, inactive ones too",
)
async def list_topics(area: Literal["qa", "forum"], gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        return await repo.list_topics(session, TOPIC_TABLES[area], active_only=False)


@admin_router.get(
    "/submissions/{submission_id}/contact",
    response_model=ContactOut,
    summary="A submitter's private contact details (for the officials' reply only)",
    responses={404: {"model": ErrorOut}},
)
async def contact(submission_id: IdPath, gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        row = await repo.get_submission(session, submission_id)
        found = await repo.get_contact(session, submission_id) if row else None
    if row is None:
        raise HTTPException(404, f"submission_id: no submission {submission_id}")
    log.info("contact_details_read", submission_id=submission_id)
    return ContactOut(
        submission_id=submission_id,
        reference=row["reference"],
        kind=SubmissionKind(row["kind"]),
        email=found["email"] if found else None,
        phone=found["phone"] if found else None,
    )
