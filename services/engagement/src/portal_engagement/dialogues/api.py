"""The dialogues' routes: the sessions, their transcripts, asking the guests, the live stream,
and scheduling (operators)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from portal_engagement import repository as repo
from portal_engagement.dialogues.live import LiveHub, live_stream
from portal_engagement.dialogues.schemas import (
    DialogueIn,
    DialogueOut,
    DialogueQuestionIn,
    GuestModel,
    Phase,
    TranscriptEntryOut,
    TranscriptOut,
)
from portal_engagement.dialogues.usecases import DialogueQuestion, times_of
from portal_engagement.domain import dialogue_phase, dialogue_refusal, validate_times
from portal_engagement.submissions.gate import READ, SUBMIT, Gate, GateDep, client_ip
from portal_engagement.submissions.schemas import (
    CodePath,
    ErrorOut,
    IdempotencyKey,
    ReceiptOut,
)
from portal_runtime.auth import make_admin_router
from portal_runtime.clock import utcnow

router = APIRouter(prefix="/v1/dialogues", tags=["online dialogues"])
admin_router = make_admin_router()
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20, pattern=r"^\d+$")]


def live_hub(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.live
    return hub


def dialogue_out(row: dict[str, Any], now: datetime, answered: int) -> DialogueOut:
    times = times_of(row)
    return DialogueOut.model_validate(
        {
            **row,
            "guests": [GuestModel.model_validate(g) for g in row["guests"]],
            "phase": dialogue_phase(times, now),
            "accepts_questions": dialogue_refusal(times, now) is None,
            "answered": answered,
            "live_path": f"/v1/dialogues/{row['code']}/live",
            "transcript_path": f"/v1/dialogues/{row['code']}/transcript",
        }
    )


async def load(gate: Gate, code: str) -> dict[str, Any]:
    async with gate.intake.sessions() as session:
        row = await repo.get_dialogue(session, code)
    if row is None:
        raise HTTPException(404, f"code: no dialogue {code}")
    return row


@router.get(
    "",
    response_model=list[DialogueOut],
    summary="Dialogues: upcoming, live and ended (newest first)",
    **READ,
)
async def list_dialogues(gate: GateDep, phase: Phase | None = None) -> Any:
    now = utcnow()
    async with gate.intake.sessions() as session:
        rows = await repo.list_dialogues(session)
    out = [dialogue_out(r, now, r["answered"]) for r in rows]
    return [d for d in out if phase is None or d.phase == phase]


@router.get(
    "/{code}",
    response_model=DialogueOut,
    summary="One dialogue: topic, guests, time, phase",
    responses={404: {"model": ErrorOut}},
    **READ,
)
async def get_dialogue(code: CodePath, gate: GateDep) -> Any:
    row = await load(gate, code)
    async with gate.intake.sessions() as session:
        answered = len(await repo.dialogue_transcript(session, code))
    return dialogue_out(row, utcnow(), answered)


@router.get(
    "/{code}/transcript",
    response_model=TranscriptOut,
    summary="Every question answered, in the order answered",
    responses={404: {"model": ErrorOut}},
    **READ,
)
async def transcript(code: CodePath, gate: GateDep) -> Any:
    row = await load(gate, code)
    async with gate.intake.sessions() as session:
        entries = await repo.dialogue_transcript(session, code)
    dialogue = dialogue_out(row, utcnow(), len(entries))
    return TranscriptOut(
        dialogue=dialogue,
        complete=dialogue.phase == "ended",
        entries=[TranscriptEntryOut.model_validate(e) for e in entries],
    )


@router.post(
    "/{code}/questions",
    summary="Ask the guests a question, before or during the session",
    **SUBMIT,
)
async def ask(
    code: CodePath, form: DialogueQuestionIn, gate: GateDep, idempotency_key: IdempotencyKey = None
) -> ReceiptOut:
    target = DialogueQuestion(code)
    return await gate.submit(form, target, body_min=10, idempotency_key=idempotency_key)


@router.get(
    "/{code}/live",
    summary="Follow the answers live (server-sent events)",
    description=(
        "A `text/event-stream`. Events: `status` (the phase, at the start and when it "
        "changes), `question` (a question picked for the guests), `answer` (a question and "
        "its answer; an edited answer comes again with the same question_id), `withdrawn`. "
        "Each has an `id`: a reader that reconnects with `Last-Event-ID` (browsers do it "
        "themselves) gets what it missed; without it, the stream starts with every event "
        "so far. A comment line is sent every few seconds to keep the connection open."
    ),
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The live stream"},
        404: {"model": ErrorOut},
        429: {"model": ErrorOut, "description": "Too many streams from this address"},
    },
    **READ,
)
async def live(
    code: CodePath,
    request: Request,
    gate: GateDep,
    hub: Annotated[LiveHub, Depends(live_hub)],
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    row = await load(gate, code)
    client = client_ip(request)
    refusal = hub.admit(client)
    if refusal is not None:
        raise HTTPException(429, refusal, headers={"Retry-After": "30"})
    released = False

    def release() -> None:
        # Once, from whichever ends first: the stream, or the response (HEAD, disconnect).
        nonlocal released
        if not released:
            released = True
            hub.release(client)

    async def stream() -> Any:
        try:
            async for event in live_stream(
                hub,
                code,
                int(last_event_id) if last_event_id else 0,
                times_of(row),
                grace=timedelta(minutes=gate.settings.live_grace_minutes),
                poll_s=gate.settings.live_poll_s,
            ):
                yield event
        finally:
            release()

    return EventSourceResponse(
        stream(),
        ping=gate.settings.live_ping_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )


@admin_router.put(
    "/dialogues/{code}",
    response_model=DialogueOut,
    summary="Schedule or change a dialogue (topic, guests, time)",
    responses={422: {"model": ErrorOut}},
)
async def put_dialogue(code: CodePath, body: DialogueIn, gate: GateDep) -> Any:
    problem = validate_times(
        starts_at=body.starts_at, ends_at=body.ends_at, questions_open_at=body.questions_open_at
    )
    if problem:
        raise HTTPException(422, problem)
    async with gate.intake.sessions.begin() as session:
        await repo.upsert_dialogue(session, code, body.model_dump())
        row = await repo.get_dialogue(session, code)
        answered = len(await repo.dialogue_transcript(session, code))
    assert row is not None
    return dialogue_out(row, utcnow(), answered)
