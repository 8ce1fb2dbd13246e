"""The forum's routes: topics, threads and replies, posting, reporting a post."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from portal_contracts.submissions import SubmissionKind
from portal_engagement import repository as repo
from portal_engagement.db import forum_topics
from portal_engagement.forum.schemas import (
    PostOut,
    PostPage,
    ReplyIn,
    ThreadIn,
    ThreadOut,
    ThreadPage,
    ThreadSummaryOut,
)
from portal_engagement.forum.usecases import Reply, Thread
from portal_engagement.submissions.api import report_post
from portal_engagement.submissions.gate import READ, REPORT, SUBMIT, GateDep
from portal_engagement.submissions.schemas import (
    CodePath,
    ErrorOut,
    IdempotencyKey,
    IdPath,
    PageQuery,
    ReceiptOut,
    ReportIn,
    ReportOut,
    SizeQuery,
    TopicOut,
)

router = APIRouter(prefix="/v1/forum", tags=["forum"])
POSTS = frozenset({SubmissionKind.FORUM_THREAD, SubmissionKind.FORUM_REPLY})


def thread_out(row: dict[str, Any]) -> ThreadSummaryOut:
    return ThreadSummaryOut.model_validate(
        {
            **row,
            "replies": row.get("replies", 0),
            "last_activity_at": row.get("last_activity_at") or row["published_at"],
            "path": f"/v1/forum/threads/{row['id']}",
        }
    )


@router.get(
    "/topics",
    response_model=list[TopicOut],
    summary="Forum topics",
    **READ,
)
async def topics(gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        return await repo.list_topics(session, forum_topics, active_only=True)


@router.get(
    "/threads",
    response_model=ThreadPage,
    summary="Published threads of every topic, latest activity first",
    **READ,
)
async def latest_threads(gate: GateDep, page: PageQuery = 1, size: SizeQuery = 20) -> Any:
    async with gate.intake.sessions() as session:
        found = await repo.forum_threads(session, None, page=page, size=size)
    return ThreadPage(
        items=[thread_out(r) for r in found.items], total=found.total, page=page, size=size
    )


@router.get(
    "/topics/{code}/threads",
    response_model=ThreadPage,
    summary="Published threads of a topic, latest activity first",
    responses={404: {"model": ErrorOut}},
    **READ,
)
async def threads(code: CodePath, gate: GateDep, page: PageQuery = 1, size: SizeQuery = 20) -> Any:
    async with gate.intake.sessions() as session:
        topic = await repo.get_topic(session, forum_topics, code)
        if topic is None or not topic["active"]:
            raise HTTPException(404, f"code: no forum topic {code}")
        found = await repo.forum_threads(session, code, page=page, size=size)
    return ThreadPage(
        items=[thread_out(r) for r in found.items], total=found.total, page=page, size=size
    )


@router.post(
    "/topics/{code}/threads",
    summary="Open a thread (published after moderation)",
    **SUBMIT,
)
async def open_thread(
    code: CodePath, form: ThreadIn, gate: GateDep, idempotency_key: IdempotencyKey = None
) -> ReceiptOut:
    return await gate.submit(form, Thread(code), body_min=20, idempotency_key=idempotency_key)


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadOut,
    summary="A thread and its published replies, oldest first",
    responses={404: {"model": ErrorOut}},
    **READ,
)
async def thread(
    thread_id: IdPath, gate: GateDep, page: PageQuery = 1, size: SizeQuery = 50
) -> Any:
    async with gate.intake.sessions() as session:
        row = await repo.public_submission(session, thread_id, SubmissionKind.FORUM_THREAD)
        if row is None:
            raise HTTPException(404, f"thread_id: no published thread {thread_id}")
        found = await repo.thread_replies(session, thread_id, page=page, size=size)
    return ThreadOut(
        thread=thread_out({**row, "replies": found.total}),
        replies=PostPage(
            items=[PostOut.model_validate(r) for r in found.items],
            total=found.total,
            page=page,
            size=size,
        ),
    )


@router.post(
    "/threads/{thread_id}/replies",
    summary="Reply to a thread (published after moderation)",
    **SUBMIT,
)
async def reply(
    thread_id: IdPath, form: ReplyIn, gate: GateDep, idempotency_key: IdempotencyKey = None
) -> ReceiptOut:
    return await gate.submit(form, Reply(thread_id), body_min=2, idempotency_key=idempotency_key)


@router.post(
    "/posts/{post_id}/reports",
    summary="Report a thread or reply to the moderators",
    **REPORT,
)
async def report(post_id: IdPath, body: ReportIn, request: Request, gate: GateDep) -> ReportOut:
    return await report_post(gate, post_id, POSTS, body, request)
