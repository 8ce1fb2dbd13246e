"""The gate every submission passes, in this order: rate limits (per client address, per
e-mail or phone), the contact details' checks, the spam trap, screening; then the feature's
target stores it (``Intake.store``) and the submitter gets a receipt.

Routes depend on ``reads``, ``submits`` or ``reports`` (each a rate limit) and take the gate as
``GateDep``; ``app.py`` keeps the one gate in ``app.state.gate``.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from portal_contracts.submissions import SubmissionKind
from portal_engagement.domain import (
    InvalidContact,
    identity_key,
    normalize_email,
    normalize_phone,
    reference,
    status_label,
)
from portal_engagement.screening import clean_name
from portal_engagement.settings import Settings
from portal_engagement.submissions.intake import (
    Closed,
    Contact,
    Intake,
    KeyReused,
    NotFound,
    Receipt,
    Refused,
    Target,
    Text,
)
from portal_engagement.submissions.schemas import (
    REPORT_RESPONSES,
    SUBMIT_ERRORS,
    ReceiptOut,
    ReportOut,
    SubmitterIn,
)
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger
from portal_runtime.ratelimit import RateLimiter, parse_rules

log = get_logger(__name__)

MESSAGES = {
    False: "Received. It will be published after moderation; follow it with the status link.",
    True: "Received and held for review: an editor will check it before anything is published.",
}
FEEDBACK_MESSAGE = (
    "Received; thank you. Your feedback goes to the officials who asked for it; "
    "follow it with the status link."
)


def client_ip(request: Request) -> str:
    # uvicorn replaces the peer with X-Forwarded-For only for trusted proxies (FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


def problems(exc: Refused) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [p.as_detail() for p in exc.problems]
    )


def field_error(field: str, message: str, code: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", field], "msg": message, "type": code}],
    )


def decoy(kind: SubmissionKind) -> Receipt:
    """What the spam trap answers: looks like any receipt, leads nowhere."""
    now = utcnow()
    return Receipt(
        id=str(uuid.uuid4()),
        reference=reference(kind, now, secrets.randbelow(900_000) + 100_000),
        kind=kind,
        state="received",
        held=False,
        submitted_at=now,
        token=secrets.token_urlsafe(32),
    )


def receipt_out(r: Receipt) -> ReceiptOut:
    return ReceiptOut(
        id=r.id,
        reference=r.reference,
        kind=r.kind,
        status=r.state,
        status_label=status_label(r.state, r.held),
        held_for_review=r.held,
        message=FEEDBACK_MESSAGE if r.kind is SubmissionKind.FEEDBACK else MESSAGES[r.held],
        submitted_at=r.submitted_at,
        status_token=r.token,
        status_path=f"/v1/status/{r.token}",
        repeated=r.repeated,
    )


@dataclass
class Gate:
    intake: Intake
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

    def contact(self, form: SubmitterIn) -> Contact:
        try:
            contact = Contact(normalize_email(form.email), normalize_phone(form.phone))
        except InvalidContact as exc:
            raise field_error(exc.field, exc.message, "invalid_contact") from exc
        who = identity_key(contact.email, contact.phone)
        if who is not None:
            self.limit("identity", who, self.submit_identity)
        return contact

    def text(self, form: SubmitterIn, *, body_min: int) -> Text:
        try:
            return self.intake.screen_text(
                body=getattr(form, "body"),  # noqa: B009 - every form has a body
                body_min=body_min,
                title=getattr(form, "title", None),
                display_name=clean_name(form.display_name),
            )
        except Refused as exc:
            raise problems(exc) from exc

    async def submit(
        self,
        form: SubmitterIn,
        target: Target,
        *,
        body_min: int,
        idempotency_key: str | None,
    ) -> ReceiptOut:
        contact = self.contact(form)
        if form.website:
            log.info("spam_trap_hit", kind=target.kind.value)
            return receipt_out(decoy(target.kind))
        text = self.text(form, body_min=body_min)
        try:
            receipt = await self.intake.store(target, text, contact, idempotency_key)
        except Refused as exc:
            raise problems(exc) from exc
        except NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        except (Closed, KeyReused) as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return receipt_out(receipt)


def gate_of(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


GateDep = Annotated[Gate, Depends(gate_of)]


def reads(request: Request, gate: GateDep) -> None:
    gate.limit("ip", f"read:{client_ip(request)}", gate.read_ip)


def submits(request: Request, gate: GateDep) -> None:
    gate.limit("ip", f"submit:{client_ip(request)}", gate.submit_ip)


def reports(request: Request, gate: GateDep) -> None:
    gate.limit("ip", f"report:{client_ip(request)}", gate.report_ip)


# Route options: every submission form, every report on a post, every public read.
SUBMIT: dict[str, Any] = {
    "response_model": ReceiptOut,
    "status_code": status.HTTP_202_ACCEPTED,
    "responses": SUBMIT_ERRORS,
    "dependencies": [Depends(submits)],
}
REPORT: dict[str, Any] = {
    "response_model": ReportOut,
    "status_code": status.HTTP_202_ACCEPTED,
    "responses": REPORT_RESPONSES,
    "dependencies": [Depends(reports)],
}
READ: dict[str, Any] = {"dependencies": [Depends(reads)]}
