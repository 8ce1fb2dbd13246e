"""The comments' routes: approved comments on an article, commenting, reporting a comment."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from portal_contracts.submissions import SubmissionKind
from portal_engagement import repository as repo
from portal_engagement.comments.schemas import CommentIn, CommentOut, CommentPage
from portal_engagement.comments.usecases import Comment
from portal_engagement.submissions.api import report_post
from portal_engagement.submissions.gate import READ, REPORT, SUBMIT, GateDep
from portal_engagement.submissions.schemas import (
    ErrorOut,
    IdempotencyKey,
    IdPath,
    PageQuery,
    ReceiptOut,
    ReportIn,
    ReportOut,
    SizeQuery,
)

router = APIRouter(tags=["comments"])
COMMENTS = frozenset({SubmissionKind.COMMENT})


@router.get(
    "/v1/articles/{article_id}/comments",
    response_model=CommentPage,
    summary="Approved comments on an article, oldest first",
    responses={404: {"model": ErrorOut, "description": "No such published article"}},
    **READ,
)
async def comments(
    article_id: IdPath, gate: GateDep, page: PageQuery = 1, size: SizeQuery = 50
) -> Any:
    async with gate.intake.sessions() as session:
        article = await repo.get_article(session, article_id)
        if article is None or article["state"] != "published":
            raise HTTPException(404, f"article_id: no published article {article_id}")
        found = await repo.article_comments(session, article_id, page=page, size=size)
    return CommentPage(
        article_id=article_id,
        items=[CommentOut.model_validate(r) for r in found.items],
        total=found.total,
        page=page,
        size=size,
    )


@router.post(
    "/v1/articles/{article_id}/comments",
    summary="Comment on an article (pre-moderated: listed once approved)",
    **SUBMIT,
)
async def comment(
    article_id: IdPath, form: CommentIn, gate: GateDep, idempotency_key: IdempotencyKey = None
) -> ReceiptOut:
    target = Comment(article_id)
    return await gate.submit(form, target, body_min=2, idempotency_key=idempotency_key)


@router.post(
    "/v1/comments/{comment_id}/reports",
    summary="Report a comment to the moderators",
    **REPORT,
)
async def report(comment_id: IdPath, body: ReportIn, request: Request, gate: GateDep) -> ReportOut:
    return await report_post(gate, comment_id, COMMENTS, body, request)
