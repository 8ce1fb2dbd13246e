"""The engagement block's HTTP API: public reads and submissions, the live stream, admin.

No public response model has a contact field: e-mail and phone go in, never out.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from portal_contracts.articles import SourceCode
from portal_contracts.submissions import ReportReason, SubmissionKind
from portal_engagement import repository as repo
from portal_engagement.db import forum_topics, qa_topics
from portal_engagement.domain import (
    DialogueTimes,
    InvalidContact,
    dialogue_phase,
    dialogue_refusal,
    feedback_phase,
    identity_key,
    normalize_email,
    normalize_phone,
    reference,
    status_label,
    validate_times,
)
from portal_engagement.live import LiveHub
from portal_engagement.screening import clean_name
from portal_engagement.services import (
    Closed,
    Contact,
    Engagement,
    NotFound,
    Receipt,
    Refused,
    Text,
)
from portal_engagement.settings import Settings
from portal_runtime.auth import ADMIN_RESPONSES
from portal_runtime.logs import get_logger
from portal_runtime.problems import NulFree
from portal_runtime.ratelimit import RateLimiter, parse_rules

log = get_logger(__name__)

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
CodePath = Annotated[str, Path(pattern=CODE_PATTERN, min_length=1, max_length=64)]
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
TokenPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$")]
PageQuery = Annotated[int, Query(ge=1, le=500)]
SizeQuery = Annotated[int, Query(ge=1, le=50)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]{8,100}$",
        description=(
            "Optional, e.g. a UUID the form generates once: sending the same submission again "
            "with the same key stores nothing new (a retry after a network error is safe)."
        ),
    ),
]

# --- shared models --------------------------------------------------------------------------


class Model(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubmitterIn(Model):
    """Who submits: a public name if they want one, private contact details if they want a
    reply; and the spam trap."""

    display_name: str | None = Field(
        default=None, max_length=100, description="Shown with the text; empty: anonymous."
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        description="Private: stored apart from the text, never published or shown by any "
        "public API. Counted for the rate limit.",
    )
    phone: str | None = Field(
        default=None, max_length=32, description="Private, like the e-mail address."
    )
    website: str = Field(
        default="",
        max_length=500,
        description="Spam trap: the form hides this field from people; leave it empty. A "
        "submission that fills it is answered as usual and thrown away.",
    )


class QuestionIn(SubmitterIn):
    topic: str = Field(pattern=CODE_PATTERN, max_length=64, description="A Q&A topic code.")
    agency: SourceCode | None = Field(
        default=None, description="The agency the question is for, if the asker knows it."
    )
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=5000)


class DialogueQuestionIn(SubmitterIn):
    body: str = Field(min_length=1, max_length=2000)


class FeedbackIn(SubmitterIn):
    section: str | None = Field(
        default=None,
        pattern=CODE_PATTERN,
        max_length=64,
        description="The section commented on; omit for feedback on the whole document.",
    )
    body: str = Field(min_length=1, max_length=10_000)


class ThreadIn(SubmitterIn):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=10_000)


class ReplyIn(SubmitterIn):
    body: str = Field(min_length=1, max_length=5000)


class CommentIn(SubmitterIn):
    body: str = Field(min_length=1, max_length=2000)


class ReceiptOut(BaseModel):
    id: str
    reference: str = Field(description="Quote it when asking about the submission.")
    kind: SubmissionKind
    status: str
    status_label: str
    held_for_review: bool = Field(
        description="The text has links or words an editor must check before it can be public."
    )
    message: str
    submitted_at: datetime
    status_token: str = Field(description="Private: whoever has it can follow the submission.")
    status_path: str = Field(description="The private status link: GET it to follow each step.")
    repeated: bool = Field(
        default=False, description="The same Idempotency-Key was used before: not stored again."
    )


class ErrorOut(BaseModel):
    detail: Any


class PageMeta(BaseModel):
    total: int
    page: int
    size: int


_SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "What it is about does not exist or is not public"},
    409: {"model": ErrorOut, "description": "Closed: the dialogue ended, the deadline passed"},
    413: {"model": ErrorOut, "description": "Body too large"},
    422: {
        "model": ErrorOut,
        "description": "A field is invalid: too long or short, not Vietnamese with diacritics, "
        "a bad e-mail or phone (the field is named in `loc`)",
    },
    429: {"model": ErrorOut, "description": "Too many submissions; see Retry-After"},
}


def _problems(exc: Refused) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [p.as_detail() for p in exc.problems]
    )


def _field_error(field: str, message: str, code: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", field], "msg": message, "type": code}],
    )


def client_ip(request: Request) -> str:
    # uvicorn replaces the peer with X-Forwarded-For only for trusted proxies (FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


# --- the submission pipeline every form shares -----------------------------------------------


@dataclass
class Gate:
    """Rate limits, contact checks, the spam trap and screening, in that order."""

    engagement: Engagement
    limiter: RateLimiter
    settings: Settings

    def __post_init__(self) -> None:
        self.submit_ip = parse_rules(self.settings.rate_limit_submit_per_ip)
        self.submit_identity = parse_rules(self.settings.rate_limit_submit_per_identity)
        self.report_ip = parse_rules(self.settings.rate_limit_report_per_ip)
        self.read_ip = parse_rules(self.settings.rate_limit_read_per_ip)

    def limit(self, scope: str, key: str, rules: list[Any]) -> None:
        refusal = self.limiter.hit(scope, key, rules)
        if refusal is not None:
            log.info("rate_limited", scope=scope, limit=refusal.limit)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                refusal.message,
                headers={"Retry-After": str(refusal.retry_after_s)},
            )

    def reads(self, request: Request) -> None:
        self.limit("ip", f"read:{client_ip(request)}", self.read_ip)

    def submits(self, request: Request) -> None:
        self.limit("ip", f"submit:{client_ip(request)}", self.submit_ip)

    def reports(self, request: Request) -> None:
        self.limit("ip", f"report:{client_ip(request)}", self.report_ip)

    def contact(self, form: SubmitterIn) -> Contact:
        try:
            contact = Contact(normalize_email(form.email), normalize_phone(form.phone))
        except InvalidContact as exc:
            raise _field_error(exc.field, exc.message, "invalid_contact") from exc
        who = identity_key(contact.email, contact.phone)
        if who is not None:
            self.limit("identity", who, self.submit_identity)
        return contact

    def text(self, form: SubmitterIn, *, body_min: int, title_min: int = 5) -> Text:
        try:
            return self.engagement.screen_text(
                body=getattr(form, "body"),  # noqa: B009 - every form has a body
                body_min=body_min,
                title=getattr(form, "title", None),
                title_min=title_min,
                display_name=clean_name(form.display_name),
            )
        except Refused as exc:
            raise _problems(exc) from exc

    async def submit(
        self,
        form: SubmitterIn,
        kind: SubmissionKind,
        store: Callable[[Text, Contact], Any],
        *,
        body_min: int,
    ) -> ReceiptOut:
        contact = self.contact(form)
        if form.website:
            log.info("spam_trap_hit", kind=kind.value)
            return _receipt(_decoy(kind))
        text = self.text(form, body_min=body_min)
        try:
            receipt: Receipt = await store(text, contact)
        except Refused as exc:
            raise _problems(exc) from exc
        except NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        except Closed as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return _receipt(receipt)


def _decoy(kind: SubmissionKind) -> Receipt:
    """What the spam trap answers: looks like any receipt, leads nowhere."""
    now = datetime.now(UTC)
    return Receipt(
        id=str(uuid.uuid4()),
        reference=reference(kind, now, secrets.randbelow(900_000) + 100_000),
        kind=kind,
        state="received",
        held=False,
        submitted_at=now,
        token=secrets.token_urlsafe(32),
    )


_MESSAGES = {
    False: "Received. It will be published after moderation; follow it with the status link.",
    True: "Received and held for review: an editor will check it before anything is published.",
}


def _receipt(r: Receipt) -> ReceiptOut:
    message = _MESSAGES[r.held]
    if r.kind is SubmissionKind.FEEDBACK:
        message = (
            "Received; thank you. Your feedback goes to the officials who asked for it; "
            "follow it with the status link."
        )
    return ReceiptOut(
        id=r.id,
        reference=r.reference,
        kind=r.kind,
        status=r.state,
        status_label=status_label(r.state, r.held),
        held_for_review=r.held,
        message=message,
        submitted_at=r.submitted_at,
        status_token=r.token,
        status_path=f"/v1/status/{r.token}",
        repeated=r.repeated,
    )


# --- Q&A ------------------------------------------------------------------------------------


class TopicOut(BaseModel):
    code: str
    name: str
    description: str


class AnsweredQuestionOut(BaseModel):
    id: str
    reference: str
    topic: str | None
    agency: str | None = Field(description="The agency that answered (or was addressed).")
    title: str | None
    question: str
    asker: str | None = Field(description="The name the asker chose to show, if any.")
    asked_at: datetime
    answer_html: str | None
    answered_by: str | None
    answered_at: datetime | None
    path: str


class QuestionPage(PageMeta):
    items: list[AnsweredQuestionOut]


class AgencyTimesOut(BaseModel):
    agency: str
    answered: int
    median_hours: float | None = Field(description="Median time from question to answer.")
    p90_hours: float | None = Field(description="Nine in ten questions answered within this.")
    mean_hours: float | None
    waiting: int = Field(description="Questions routed to the agency, not answered yet.")
    oldest_waiting_since: datetime | None


def _question(row: dict[str, Any]) -> AnsweredQuestionOut:
    return AnsweredQuestionOut(
        id=row["id"],
        reference=row["reference"],
        topic=row["topic"],
        agency=row["routed_agency"] or row["agency"],
        title=row["title"],
        question=row["body"],
        asker=row["display_name"],
        asked_at=row["submitted_at"],
        answer_html=row["answer_html"],
        answered_by=row["answered_by"],
        answered_at=row["answered_at"],
        path=f"/v1/qa/questions/{row['id']}",
    )


def qa_router(gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/v1/qa", tags=["online Q&A"])
    sessions = gate.engagement.sessions

    @router.get(
        "/topics",
        response_model=list[TopicOut],
        summary="Topics a question can be asked on",
        dependencies=[Depends(gate.reads)],
    )
    async def topics() -> Any:
        async with sessions() as session:
            return await repo.list_topics(session, qa_topics, active_only=True)

    @router.get(
        "/questions",
        response_model=QuestionPage,
        summary="Answered questions, newest answer first, by topic and agency",
        dependencies=[Depends(gate.reads)],
    )
    async def questions(
        topic: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)] = None,
        agency: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)] = None,
        page: PageQuery = 1,
        size: SizeQuery = 20,
    ) -> Any:
        async with sessions() as session:
            found = await repo.public_questions(
                session, topic=topic, agency=agency, page=page, size=size
            )
        return QuestionPage(
            items=[_question(r) for r in found.items], total=found.total, page=page, size=size
        )

    @router.get(
        "/questions/{question_id}",
        response_model=AnsweredQuestionOut,
        summary="One answered question",
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(gate.reads)],
    )
    async def question(question_id: IdPath) -> Any:
        async with sessions() as session:
            row = await repo.public_submission(session, question_id, SubmissionKind.QA)
        if row is None:
            raise HTTPException(404, f"question_id: no answered question {question_id}")
        return _question(row)

    @router.get(
        "/agencies",
        response_model=list[AgencyTimesOut],
        summary="Time to answer per agency",
        description="For every agency questions were routed to: how many it answered, how "
        "long answers took (hours: median, 90th percentile, mean), and how many still wait.",
        dependencies=[Depends(gate.reads)],
    )
    async def agencies() -> Any:
        async with sessions() as session:
            rows = await repo.agency_answer_times(session)
        return [
            {
                **r,
                **{
                    k: round(float(r[k]), 2) if r[k] is not None else None
                    for k in ("median_hours", "p90_hours", "mean_hours")
                },
            }
            for r in rows
        ]

    @router.post(
        "/questions",
        response_model=ReceiptOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Ask a question (screened, then moderated, routed and answered)",
        responses=_SUBMIT_ERRORS,
        dependencies=[Depends(gate.submits)],
    )
    async def ask(form: QuestionIn, idempotency_key: IdempotencyKey = None) -> ReceiptOut:
        return await gate.submit(
            form,
            SubmissionKind.QA,
            lambda text, contact: gate.engagement.ask_question(
                topic=form.topic,
                agency=form.agency,
                text=text,
                contact=contact,
                idempotency_key=idempotency_key,
            ),
            body_min=20,
        )

    return router


# --- dialogues ------------------------------------------------------------------------------


class GuestModel(Model):
    name: str = Field(min_length=1, max_length=200)
    position: str = Field(default="", max_length=300, description="Title and agency.")


class DialogueOut(BaseModel):
    code: str
    title: str
    topic: str
    description: str
    guests: list[GuestModel]
    questions_open_at: datetime | None
    starts_at: datetime
    ends_at: datetime
    phase: Literal["upcoming", "live", "ended"]
    accepts_questions: bool
    answered: int = Field(description="Questions answered so far.")
    live_path: str = Field(description="Server-sent events: the answers as they come.")
    transcript_path: str


class TranscriptEntryOut(BaseModel):
    question_id: str
    question: str
    asker: str | None
    asked_at: datetime
    answer_html: str | None
    answered_by: str | None
    answered_at: datetime | None


class TranscriptOut(BaseModel):
    dialogue: DialogueOut
    complete: bool = Field(description="The session has ended: this is the archived transcript.")
    entries: list[TranscriptEntryOut]


def _dialogue(row: dict[str, Any], now: datetime, answered: int) -> DialogueOut:
    times = DialogueTimes(row["questions_open_at"], row["starts_at"], row["ends_at"])
    return DialogueOut(
        code=row["code"],
        title=row["title"],
        topic=row["topic"],
        description=row["description"],
        guests=[GuestModel.model_validate(g) for g in row["guests"]],
        questions_open_at=row["questions_open_at"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        phase=dialogue_phase(times, now),
        accepts_questions=dialogue_refusal(times, now) is None,
        answered=answered,
        live_path=f"/v1/dialogues/{row['code']}/live",
        transcript_path=f"/v1/dialogues/{row['code']}/transcript",
    )


def _entry(row: dict[str, Any]) -> TranscriptEntryOut:
    return TranscriptEntryOut(
        question_id=row["id"],
        question=row["body"],
        asker=row["display_name"],
        asked_at=row["submitted_at"],
        answer_html=row["answer_html"],
        answered_by=row["answered_by"],
        answered_at=row["answered_at"],
    )


def dialogues_router(gate: Gate, hub: LiveHub) -> APIRouter:
    router = APIRouter(prefix="/v1/dialogues", tags=["online dialogues"])
    sessions = gate.engagement.sessions
    settings = gate.settings

    async def load(code: str) -> dict[str, Any]:
        async with sessions() as session:
            row = await repo.get_dialogue(session, code)
        if row is None:
            raise HTTPException(404, f"code: no dialogue {code}")
        return row

    @router.get(
        "",
        response_model=list[DialogueOut],
        summary="Dialogues: upcoming, live and ended (newest first)",
        dependencies=[Depends(gate.reads)],
    )
    async def list_dialogues(
        phase: Literal["upcoming", "live", "ended"] | None = None,
    ) -> Any:
        now = datetime.now(UTC)
        async with sessions() as session:
            rows = await repo.list_dialogues(session)
        out = [_dialogue(r, now, r["answered"]) for r in rows]
        return [d for d in out if phase is None or d.phase == phase]

    @router.get(
        "/{code}",
        response_model=DialogueOut,
        summary="One dialogue: topic, guests, time, phase",
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(gate.reads)],
    )
    async def get_dialogue(code: CodePath) -> Any:
        row = await load(code)
        async with sessions() as session:
            answered = len(await repo.dialogue_transcript(session, code))
        return _dialogue(row, datetime.now(UTC), answered)

    @router.get(
        "/{code}/transcript",
        response_model=TranscriptOut,
        summary="Every question answered, in the order answered",
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(gate.reads)],
    )
    async def transcript(code: CodePath) -> Any:
        row = await load(code)
        async with sessions() as session:
            entries = await repo.dialogue_transcript(session, code)
        now = datetime.now(UTC)
        dialogue = _dialogue(row, now, len(entries))
        return TranscriptOut(
            dialogue=dialogue,
            complete=dialogue.phase == "ended",
            entries=[_entry(e) for e in entries],
        )

    @router.post(
        "/{code}/questions",
        response_model=ReceiptOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Ask the guests a question, before or during the session",
        responses=_SUBMIT_ERRORS,
        dependencies=[Depends(gate.submits)],
    )
    async def ask(
        code: CodePath, form: DialogueQuestionIn, idempotency_key: IdempotencyKey = None
    ) -> ReceiptOut:
        return await gate.submit(
            form,
            SubmissionKind.DIALOGUE,
            lambda text, contact: gate.engagement.ask_dialogue(
                code, text=text, contact=contact, idempotency_key=idempotency_key
            ),
            body_min=10,
        )

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
        dependencies=[Depends(gate.reads)],
    )
    async def live(
        code: CodePath,
        request: Request,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", max_length=20, pattern=r"^\d+$")
        ] = None,
    ) -> EventSourceResponse:
        row = await load(code)
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

        start = int(last_event_id) if last_event_id else 0
        times = DialogueTimes(row["questions_open_at"], row["starts_at"], row["ends_at"])
        grace = timedelta(minutes=settings.live_grace_minutes)

        async def stream() -> AsyncIterator[dict[str, Any]]:
            sent_phase: str | None = None
            try:
                async with hub.follow(code, start) as reader:
                    while True:
                        now = datetime.now(UTC)
                        phase = dialogue_phase(times, now)
                        if phase != sent_phase:
                            sent_phase = phase
                            yield {"event": "status", "data": json.dumps({"phase": phase})}
                        events = await reader.next_batch()
                        for e in events:
                            yield {"id": str(e.seq), "event": e.event, "data": e.data}
                        if events:
                            continue
                        if phase == "ended" and now > times.ends_at + grace:
                            return  # archived: the transcript has it all
                        await reader.wait(settings.live_poll_s)
            finally:
                release()

        return EventSourceResponse(
            stream(),
            ping=settings.live_ping_s,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            background=BackgroundTask(release),
        )

    return router


# --- feedback on Party building -------------------------------------------------------------


class SectionModel(Model):
    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(default="", max_length=200_000)


class SectionOut(SectionModel):
    feedback: int = Field(description="Feedback received on this section.")


class DocumentSummaryOut(BaseModel):
    code: str
    title: str
    summary: str
    requested_by: str
    opens_at: datetime
    deadline: datetime
    phase: Literal["upcoming", "open", "closed"]


class DocumentOut(DocumentSummaryOut):
    sections: list[SectionOut]
    feedback_on_whole: int = Field(description="Feedback received on the whole document.")
    feedback_total: int


def _document_summary(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "code": row["code"],
        "title": row["title"],
        "summary": row["summary"],
        "requested_by": row["requested_by"],
        "opens_at": row["opens_at"],
        "deadline": row["deadline"],
        "phase": feedback_phase(row["opens_at"], row["deadline"], now),
    }


def feedback_router(gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/v1/feedback", tags=["feedback on Party building"])
    sessions = gate.engagement.sessions

    @router.get(
        "/documents",
        response_model=list[DocumentSummaryOut],
        summary="Documents and topics opened for feedback (latest deadline first)",
        dependencies=[Depends(gate.reads)],
    )
    async def documents(phase: Literal["upcoming", "open", "closed"] | None = None) -> Any:
        now = datetime.now(UTC)
        async with sessions() as session:
            rows = await repo.list_documents(session)
        out = [_document_summary(r, now) for r in rows]
        return [d for d in out if phase is None or d["phase"] == phase]

    @router.get(
        "/documents/{code}",
        response_model=DocumentOut,
        summary="A document with its sections and how much feedback each received",
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(gate.reads)],
    )
    async def document(code: CodePath) -> Any:
        async with sessions() as session:
            row = await repo.get_document(session, code)
            if row is None:
                raise HTTPException(404, f"code: no document {code}")
            counts = await repo.feedback_counts(session, code)
        return {
            **_document_summary(row, datetime.now(UTC)),
            "sections": [{**s, "feedback": counts.get(s["code"], 0)} for s in row["sections"]],
            "feedback_on_whole": counts.get(None, 0),
            "feedback_total": sum(counts.values()),
        }

    @router.post(
        "/documents/{code}/feedback",
        response_model=ReceiptOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Give feedback on the whole document or on one section",
        description="Each submission gets an acknowledgement (its reference) and a private "
        "status link. Feedback is read by the editors and passed to the officials who asked.",
        responses=_SUBMIT_ERRORS,
        dependencies=[Depends(gate.submits)],
    )
    async def give(
        code: CodePath, form: FeedbackIn, idempotency_key: IdempotencyKey = None
    ) -> ReceiptOut:
        return await gate.submit(
            form,
            SubmissionKind.FEEDBACK,
            lambda text, contact: gate.engagement.give_feedback(
                code,
                section=form.section,
                text=text,
                contact=contact,
                idempotency_key=idempotency_key,
            ),
            body_min=10,
        )

    return router


# --- forum and comments ---------------------------------------------------------------------


class PostOut(BaseModel):
    id: str
    title: str | None
    body: str
    author: str | None = Field(description="The name the author chose to show, if any.")
    published_at: datetime | None


class ThreadSummaryOut(PostOut):
    topic: str | None
    replies: int
    last_activity_at: datetime | None
    path: str


class ThreadPage(PageMeta):
    items: list[ThreadSummaryOut]


class PostPage(PageMeta):
    items: list[PostOut]


class ThreadOut(BaseModel):
    thread: ThreadSummaryOut
    replies: PostPage


class ReportIn(Model):
    reason: ReportReason
    note: str | None = Field(default=None, max_length=500)


class ReportOut(BaseModel):
    report_id: str
    received: bool = Field(description="False: this reader had already reported the post.")
    message: str


def _post(row: dict[str, Any]) -> PostOut:
    return PostOut(
        id=row["id"],
        title=row["title"],
        body=row["body"],
        author=row["display_name"],
        published_at=row["published_at"],
    )


def _thread(row: dict[str, Any]) -> ThreadSummaryOut:
    return ThreadSummaryOut(
        **_post(row).model_dump(),
        topic=row["forum_topic"],
        replies=row.get("replies", 0),
        last_activity_at=row.get("last_activity_at") or row["published_at"],
        path=f"/v1/forum/threads/{row['id']}",
    )


_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such published post"},
    429: {"model": ErrorOut, "description": "Too many reports; see Retry-After"},
}


def forum_router(gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/v1/forum", tags=["forum"])
    sessions = gate.engagement.sessions

    @router.get(
        "/topics",
        response_model=list[TopicOut],
        summary="Forum topics",
        dependencies=[Depends(gate.reads)],
    )
    async def topics() -> Any:
        async with sessions() as session:
            return await repo.list_topics(session, forum_topics, active_only=True)

    @router.get(
        "/threads",
        response_model=ThreadPage,
        summary="Published threads of every topic, latest activity first",
        dependencies=[Depends(gate.reads)],
    )
    async def latest_threads(page: PageQuery = 1, size: SizeQuery = 20) -> Any:
        async with sessions() as session:
            found = await repo.forum_threads(session, None, page=page, size=size)
        return ThreadPage(
            items=[_thread(r) for r in found.items], total=found.total, page=page, size=size
        )

    @router.get(
        "/topics/{code}/threads",
        response_model=ThreadPage,
        summary="Published threads of a topic, latest activity first",
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(gate.reads)],
    )
    async def threads(code: CodePath, page: PageQuery = 1, size: SizeQuery = 20) -> Any:
        async with sessions() as session:
            topic = await repo.get_topic(session, forum_topics, code)
            if topic is None or not topic["active"]:
                raise HTTPException(404, f"code: no forum topic {code}")
            found = await repo.forum_threads(session, code, page=page, size=size)
        return ThreadPage(
            items=[_thread(r) for r in found.items], total=found.total, page=page, size=size
        )

    @router.post(
        "/topics/{code}/threads",
        response_model=ReceiptOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Open a thread (published after moderation)",
        responses=_SUBMIT_ERRORS,
        dependencies=[Depends(gate.submits)],
    )
    async def open_thread(
        code: CodePath, form: ThreadIn, idempotency_key: IdempotencyKey = None
    ) -> ReceiptOut:
        return await gate.submit(
            form,
            SubmissionKind.FORUM_THREAD,
            lambda text, contact: gate.engagement.open_thread(
                code, text=text, contact=contact, idempotency_key=idempotency_key
            ),
            body_min=20,
        )

    @router.get(
        "/threads/{thread_id}",
        response_model=ThreadOut,
        summary="A thread and its published replies, oldest first",
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(gate.reads)],
    )
    async def thread(thread_id: IdPath, page: PageQuery = 1, size: SizeQuery = 50) -> Any:
        async with sessions() as session:
            row = await repo.public_submission(session, thread_id, SubmissionKind.FORUM_THREAD)
            if row is None:
                raise HTTPException(404, f"thread_id: no published thread {thread_id}")
            found = await repo.thread_replies(session, thread_id, page=page, size=size)
        return ThreadOut(
            thread=_thread({**row, "replies": found.total}),
            replies=PostPage(
                items=[_post(r) for r in found.items], total=found.total, page=page, size=size
            ),
        )

    @router.post(
        "/threads/{thread_id}/replies",
        response_model=ReceiptOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Reply to a thread (published after moderation)",
        responses=_SUBMIT_ERRORS,
        dependencies=[Depends(gate.submits)],
    )
    async def reply(
        thread_id: IdPath, form: ReplyIn, idempotency_key: IdempotencyKey = None
    ) -> ReceiptOut:
        return await gate.submit(
            form,
            SubmissionKind.FORUM_REPLY,
            lambda text, contact: gate.engagement.reply(
                thread_id, text=text, contact=contact, idempotency_key=idempotency_key
            ),
            body_min=2,
        )

    @router.post(
        "/posts/{post_id}/reports",
        response_model=ReportOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Report a thread or reply to the moderators",
        responses=_REPORT_RESPONSES,
        dependencies=[Depends(gate.reports)],
    )
    async def report(post_id: IdPath, body: ReportIn, request: Request) -> ReportOut:
        return await _report(
            gate,
            post_id,
            frozenset({SubmissionKind.FORUM_THREAD, SubmissionKind.FORUM_REPLY}),
            body,
            request,
        )

    return router


async def _report(
    gate: Gate, post_id: str, kinds: frozenset[SubmissionKind], body: ReportIn, request: Request
) -> ReportOut:
    note = clean_name(body.note) if body.note else None
    try:
        report_id, new = await gate.engagement.report(
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


class CommentOut(BaseModel):
    id: str
    body: str
    author: str | None
    published_at: datetime | None


class CommentPage(PageMeta):
    article_id: str
    items: list[CommentOut]


def comments_router(gate: Gate) -> APIRouter:
    router = APIRouter(tags=["comments"])
    sessions = gate.engagement.sessions

    @router.get(
        "/v1/articles/{article_id}/comments",
        response_model=CommentPage,
        summary="Approved comments on an article, oldest first",
        responses={404: {"model": ErrorOut, "description": "No such published article"}},
        dependencies=[Depends(gate.reads)],
    )
    async def comments(article_id: IdPath, page: PageQuery = 1, size: SizeQuery = 50) -> Any:
        async with sessions() as session:
            article = await repo.get_article(session, article_id)
            if article is None or article["state"] != "published":
                raise HTTPException(404, f"article_id: no published article {article_id}")
            found = await repo.article_comments(session, article_id, page=page, size=size)
        return CommentPage(
            article_id=article_id,
            items=[
                CommentOut(
                    id=r["id"],
                    body=r["body"],
                    author=r["display_name"],
                    published_at=r["published_at"],
                )
                for r in found.items
            ],
            total=found.total,
            page=page,
            size=size,
        )

    @router.post(
        "/v1/articles/{article_id}/comments",
        response_model=ReceiptOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Comment on an article (pre-moderated: listed once approved)",
        responses=_SUBMIT_ERRORS,
        dependencies=[Depends(gate.submits)],
    )
    async def comment(
        article_id: IdPath, form: CommentIn, idempotency_key: IdempotencyKey = None
    ) -> ReceiptOut:
        return await gate.submit(
            form,
            SubmissionKind.COMMENT,
            lambda text, contact: gate.engagement.comment(
                article_id, text=text, contact=contact, idempotency_key=idempotency_key
            ),
            body_min=2,
        )

    @router.post(
        "/v1/comments/{comment_id}/reports",
        response_model=ReportOut,
        status_code=status.HTTP_202_ACCEPTED,
        summary="Report a comment to the moderators",
        responses=_REPORT_RESPONSES,
        dependencies=[Depends(gate.reports)],
    )
    async def report(comment_id: IdPath, body: ReportIn, request: Request) -> ReportOut:
        return await _report(gate, comment_id, frozenset({SubmissionKind.COMMENT}), body, request)

    return router


# --- the private status link ----------------------------------------------------------------


class StepOut(BaseModel):
    state: str
    label: str = Field(description="The step in Vietnamese, as shown to the submitter.")
    at: datetime
    agency: str | None = None
    note: str | None = Field(default=None, description="A reason given with the step.")


class AnswerOut(BaseModel):
    answer_html: str
    answered_by: str | None
    answered_at: datetime | None


class StatusOut(BaseModel):
    reference: str
    kind: SubmissionKind
    state: str
    label: str
    held_for_review: bool
    submitted_at: datetime
    title: str | None
    body: str
    about: dict[str, str] = Field(
        description="What it is about: topic, agency, dialogue, document, section, thread, article."
    )
    steps: list[StepOut] = Field(description="Every step so far, the first is 'received'.")
    reason: str | None = Field(description="Why it was rejected or withdrawn.")
    answer: AnswerOut | None = Field(description="The published answer (questions).")
    public_path: str | None = Field(description="Where the public sees it, once published.")


def _public_path(row: dict[str, Any]) -> str | None:
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


def status_router(gate: Gate) -> APIRouter:
    router = APIRouter(tags=["status"])

    @router.get(
        "/v1/status/{token}",
        response_model=StatusOut,
        summary="The submitter's private status link: every step of their submission",
        description="The token comes in the receipt of the submission; it is the only key.",
        responses={404: {"model": ErrorOut, "description": "No submission has this link"}},
        dependencies=[Depends(gate.reads)],
    )
    async def get_status(token: TokenPath) -> Any:
        found = await gate.engagement.status(token)
        if found is None:
            raise HTTPException(404, "token: no submission has this status link")
        row, steps = found
        about = {
            k: row[c]
            for k, c in (
                ("topic", "topic"),
                ("agency", "routed_agency"),
                ("dialogue", "dialogue_code"),
                ("document", "document_code"),
                ("section", "section_code"),
                ("forum_topic", "forum_topic"),
                ("thread", "thread_id"),
                ("article", "article_id"),
            )
            if row[c]
        }
        if "agency" not in about and row["agency"]:
            about["agency"] = row["agency"]
        answer = None
        if row["public"] and row["answer_html"]:
            answer = AnswerOut(
                answer_html=row["answer_html"],
                answered_by=row["answered_by"],
                answered_at=row["answered_at"],
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
                StepOut(
                    state="received",
                    label=status_label("received", row["held"]),
                    at=row["submitted_at"],
                ),
                *(
                    StepOut(
                        state=s["state"],
                        label=status_label(s["state"], False),
                        at=s["at"],
                        agency=s["agency"],
                        note=s["note"],
                    )
                    for s in steps
                ),
            ],
            reason=row["reason"],
            answer=answer,
            public_path=_public_path(row),
        )

    return router


# --- admin: topics, dialogues, documents, contact details -----------------------------------


class TopicIn(Model):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    position: int = Field(default=0, ge=0, le=10_000, description="Order in lists.")
    active: bool = True


class TopicAdminOut(TopicOut):
    position: int
    active: bool
    updated_at: datetime


class DialogueIn(Model):
    title: str = Field(min_length=1, max_length=300)
    topic: str = Field(pattern=CODE_PATTERN, max_length=64)
    description: str = Field(default="", max_length=10_000)
    guests: list[GuestModel] = Field(default_factory=list, max_length=50)
    questions_open_at: AwareDatetime | None = Field(
        default=None, description="When questions open; omit: from now on."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class DocumentIn(Model):
    title: str = Field(min_length=1, max_length=500)
    summary: str = Field(default="", max_length=10_000)
    requested_by: str = Field(
        min_length=1, max_length=300, description="The officials or body who asked for feedback."
    )
    sections: list[SectionModel] = Field(default_factory=list, max_length=500)
    opens_at: AwareDatetime
    deadline: AwareDatetime


class ContactOut(BaseModel):
    submission_id: str
    reference: str
    kind: SubmissionKind
    email: str | None
    phone: str | None


def admin_router(gate: Gate, guard: Callable[..., None]) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1",
        tags=["admin"],
        dependencies=[Depends(guard)],
        responses=ADMIN_RESPONSES,
    )
    sessions = gate.engagement.sessions

    for path, table, label in (
        ("qa-topics", qa_topics, "Q&A"),
        ("forum-topics", forum_topics, "forum"),
    ):

        def add_topic_routes(path: str = path, table: Any = table, label: str = label) -> None:
            @router.put(
                f"/{path}/{{code}}",
                response_model=TopicAdminOut,
                summary=f"Create or update a {label} topic (deactivate to hide it)",
            )
            async def put_topic(code: CodePath, body: TopicIn) -> Any:
                async with sessions.begin() as session:
                    await repo.upsert_topic(session, table, code, body.model_dump())
                    return await repo.get_topic(session, table, code)

            @router.get(
                f"/{path}",
                response_model=list[TopicAdminOut],
                summary=f"Every {label} topic, inactive ones too",
            )
            async def list_all() -> Any:
                async with sessions() as session:
                    return await repo.list_topics(session, table, active_only=False)

        add_topic_routes()

    @router.put(
        "/dialogues/{code}",
        response_model=DialogueOut,
        summary="Schedule or change a dialogue (topic, guests, time)",
        responses={422: {"model": ErrorOut}},
    )
    async def put_dialogue(code: CodePath, body: DialogueIn) -> Any:
        problem = validate_times(
            starts_at=body.starts_at, ends_at=body.ends_at, questions_open_at=body.questions_open_at
        )
        if problem:
            raise HTTPException(422, problem)
        values = body.model_dump()
        values["guests"] = [g.model_dump() for g in body.guests]
        async with sessions.begin() as session:
            await repo.upsert_dialogue(session, code, values)
            row = await repo.get_dialogue(session, code)
            answered = len(await repo.dialogue_transcript(session, code))
        assert row is not None
        return _dialogue(row, datetime.now(UTC), answered)

    @router.put(
        "/feedback-documents/{code}",
        response_model=DocumentSummaryOut,
        summary="Open a document or topic for feedback, with its sections and deadline",
        responses={422: {"model": ErrorOut}},
    )
    async def put_document(code: CodePath, body: DocumentIn) -> Any:
        if body.deadline <= body.opens_at:
            raise HTTPException(422, "deadline: must be after opens_at")
        codes = [s.code for s in body.sections]
        if len(codes) != len(set(codes)):
            raise HTTPException(422, "sections: a section code is used twice")
        values = body.model_dump()
        values["sections"] = [s.model_dump() for s in body.sections]
        async with sessions.begin() as session:
            await repo.upsert_document(session, code, values)
            row = await repo.get_document(session, code)
        assert row is not None
        return _document_summary(row, datetime.now(UTC))

    @router.get(
        "/submissions/{submission_id}/contact",
        response_model=ContactOut,
        summary="A submitter's private contact details (for the officials' reply only)",
        responses={404: {"model": ErrorOut}},
    )
    async def contact(submission_id: IdPath) -> Any:
        async with sessions() as session:
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

    return router
