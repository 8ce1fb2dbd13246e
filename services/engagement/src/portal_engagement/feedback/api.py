"""The feedback's routes: documents open for feedback, giving feedback, and opening a document
(operators)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from portal_engagement import repository as repo
from portal_engagement.domain import feedback_phase
from portal_engagement.feedback.schemas import (
    DocumentIn,
    DocumentOut,
    DocumentSummaryOut,
    FeedbackIn,
    Phase,
)
from portal_engagement.feedback.usecases import Feedback
from portal_engagement.submissions.gate import READ, SUBMIT, GateDep
from portal_engagement.submissions.schemas import (
    CodePath,
    ErrorOut,
    IdempotencyKey,
    ReceiptOut,
)
from portal_runtime.auth import make_admin_router
from portal_runtime.clock import utcnow

router = APIRouter(prefix="/v1/feedback", tags=["feedback on Party building"])
admin_router = make_admin_router()


def document_summary(row: dict[str, Any], now: datetime) -> DocumentSummaryOut:
    phase = feedback_phase(row["opens_at"], row["deadline"], now)
    return DocumentSummaryOut.model_validate({**row, "phase": phase})


@router.get(
    "/documents",
    response_model=list[DocumentSummaryOut],
    summary="Documents and topics opened for feedback (latest deadline first)",
    **READ,
)
async def documents(gate: GateDep, phase: Phase | None = None) -> Any:
    now = utcnow()
    async with gate.intake.sessions() as session:
        rows = await repo.list_documents(session)
    out = [document_summary(r, now) for r in rows]
    return [d for d in out if phase is None or d.phase == phase]


@router.get(
    "/documents/{code}",
    response_model=DocumentOut,
    summary="A document with its sections and how much feedback each received",
    responses={404: {"model": ErrorOut}},
    **READ,
)
async def document(code: CodePath, gate: GateDep) -> Any:
    async with gate.intake.sessions() as session:
        row = await repo.get_document(session, code)
        if row is None:
            raise HTTPException(404, f"code: no document {code}")
        counts = await repo.feedback_counts(session, code)
    return {
        **document_summary(row, utcnow()).model_dump(),
        "sections": [{**s, "feedback": counts.get(s["code"], 0)} for s in row["sections"]],
        "feedback_on_whole": counts.get(None, 0),
        "feedback_total": sum(counts.values()),
    }


@router.post(
    "/documents/{code}/feedback",
    summary="Give feedback on the whole document or on one section",
    description="Each submission gets an acknowledgement (its reference) and a private "
    "status link. Feedback is read by the editors and passed to the officials who asked.",
    **SUBMIT,
)
async def give(
    code: CodePath, form: FeedbackIn, gate: GateDep, idempotency_key: IdempotencyKey = None
) -> ReceiptOut:
    target = Feedback(code, form.section)
    return await gate.submit(form, target, body_min=10, idempotency_key=idempotency_key)


@admin_router.put(
    "/feedback-documents/{code}",
    response_model=DocumentSummaryOut,
    summary="Open a document or topic for feedback, with its sections and deadline",
    responses={422: {"model": ErrorOut}},
)
async def put_document(code: CodePath, body: DocumentIn, gate: GateDep) -> Any:
    if body.deadline <= body.opens_at:
        raise HTTPException(422, "deadline: must be after opens_at")
    codes = [s.code for s in body.sections]
    if len(codes) != len(set(codes)):
        raise HTTPException(422, "sections: a section code is used twice")
    async with gate.intake.sessions.begin() as session:
        await repo.upsert_document(session, code, body.model_dump())
        row = await repo.get_document(session, code)
    assert row is not None
    return document_summary(row, utcnow())
