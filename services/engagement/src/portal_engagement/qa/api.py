"""The Q&A's routes: topics, answered questions, time to answer per agency, asking."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from portal_contracts.submissions import SubmissionKind
from portal_engagement import repository as repo
from portal_engagement.db import qa_topics
from portal_engagement.qa.schemas import (
    AgencyTimesOut,
    AnsweredQuestionOut,
    QuestionIn,
    QuestionPage,
)
from portal_engagement.qa.usecases import Question
from portal_engagement.submissions.gate import READ, SUBMIT, GateDep
from portal_engagement.submissions.schemas import (
    CODE_PATTERN,
    ErrorOut,
    IdempotencyKey,
    IdPath,
    PageQuery,
    ReceiptOut,
    SizeQuery,
    TopicOut,
)

router = APIRouter(prefix="/v1/qa", tags=["online Q&A"])
CodeQuery = Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)]


def question_out(row: dict[str, Any]) -> AnsweredQuestionOut:
    return AnsweredQuestionOut.model_validate(
        {
            **row,
            "agency": row["routed_agency"] or row["agency"],
            "path": f"/v1/qa/questions/{row['id']}",
        }
    )


@router.get(
    "/topics",
    response_model=list[TopicOut],
    summary="Topics a question can be asked on",
    **READ,
)
async def topics(gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        return await repo.list_topics(session, qa_topics, active_only=True)


@router.get(
    "/questions",
    response_model=QuestionPage,
    summary="Answered questions, newest answer first, by topic and agency",
    **READ,
)
async def questions(
    gate: GateDep,
    topic: CodeQuery = None,
    agency: CodeQuery = None,
    page: PageQuery = 1,
    size: SizeQuery = 20,
) -> Any:
    async with gate.intake.sessions() as session:
        found = await repo.public_questions(
            session, topic=topic, agency=agency, page=page, size=size
        )
    return QuestionPage(
        items=[question_out(r) for r in found.items], total=found.total, page=page, size=size
    )


@router.get(
    "/questions/{question_id}",
    response_model=AnsweredQuestionOut,
    summary="One answered question",
    responses={404: {"model": ErrorOut}},
    **READ,
)
async def question(question_id: IdPath, gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        row = await repo.public_submission(session, question_id, SubmissionKind.QA)
    if row is None:
        raise HTTPException(404, f"question_id: no answered question {question_id}")
    return question_out(row)


@router.get(
    "/agencies",
    response_model=list[AgencyTimesOut],
    summary="Time to answer per agency",
    description="For every agency questions were routed to: how many it answered, how "
    "long answers took (hours: median, 90th percentile, mean), and how many still wait.",
    **READ,
)
async def agencies(gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        rows = await repo.agency_answer_times(session)
    hours = ("median_hours", "p90_hours", "mean_hours")
    return [
        {**r, **{k: round(float(r[k]), 2) if r[k] is not None else None for k in hours}}
        for r in rows
    ]


@router.post(
    "/questions",
    summary="Ask a question (screened, then moderated, routed and answered)",
    **SUBMIT,
)
async def ask(
    form: QuestionIn, gate: GateDep, idempotency_key: IdempotencyKey = None
) -> ReceiptOut:
    target = Question(form.topic, form.agency)
    return await gate.submit(form, target, body_min=20, idempotency_key=idempotency_key)
