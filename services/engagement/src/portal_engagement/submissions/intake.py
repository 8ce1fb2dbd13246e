"""Storing a screened submission: with its outgoing event in one transaction (the outbox), its
contact details in their own table and never in the event, a private status link, and
idempotency (the same Idempotency-Key with the same content stores nothing new; with other
content, or from someone else, it is refused)."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.envelope import Envelope
from portal_contracts.submissions import (
    ReportReason,
    SubmissionKind,
    SubmissionReported,
    SubmissionReportedEvent,
    SubmissionSubmitted,
    SubmissionSubmittedEvent,
)
from portal_contracts.topics import SUBMISSION_REPORTED
from portal_engagement import repository as repo
from portal_engagement.db import outbox
from portal_engagement.domain import (
    PRODUCER,
    RECEIVED,
    REPORTABLE_KINDS,
    client_digest,
    content_digest,
    idempotency_digest,
    new_status_token,
    reference,
    token_digest,
)
from portal_engagement.screening import Problem, Screening, TextField, WordList, screen
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger

log = get_logger(__name__)


class Refused(Exception):
    """The text fails screening (HTTP 422); each problem names its field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class NotFound(Exception):
    """What the submission is about does not exist or is not public (HTTP 404)."""


class Closed(Exception):
    """What the submission is about takes none now: a dialogue ended, a deadline passed (409)."""


class KeyReused(Exception):
    """The Idempotency-Key was used before with other content or by someone else (409): the
    answer never names that submission nor gives a link to it."""


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Text:
    """The screened text of a submission."""

    title: str | None
    body: str
    display_name: str | None
    flags: list[str]
    held: bool


@dataclass(frozen=True)
class Receipt:
    id: str
    reference: str
    kind: SubmissionKind
    state: str
    held: bool
    submitted_at: datetime
    token: str
    repeated: bool = False  # the same Idempotency-Key was sent before: nothing new was stored


@dataclass(frozen=True)
class Stored:
    """What an event builder knows of a submission just stored."""

    id: str
    reference: str
    text: Text
    submitted_at: datetime
    context: dict[str, Any]


class Target(ABC):
    """What a submission is about: its kind, the topic of its event, and how it is stored."""

    kind: ClassVar[SubmissionKind]
    topic: ClassVar[str]

    @property
    @abstractmethod
    def key(self) -> str:
        """Where an Idempotency-Key is unique (with the kind): the context's code or id."""

    @abstractmethod
    async def load(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        """The context (topic, dialogue, document, thread, article); raises ``NotFound``,
        ``Closed`` or ``Refused`` when it takes no submission."""

    @abstractmethod
    def columns(self, context: dict[str, Any]) -> dict[str, Any]:
        """The submission's columns that say what it is about."""

    @abstractmethod
    def event(self, stored: Stored) -> Envelope:
        """The event that tells moderation."""


def post_event(kind: str, context_id: str, context_title: str | None, s: Stored) -> Envelope:
    """The ``submission.submitted`` event of a post: a forum thread or reply, a comment."""
    return SubmissionSubmittedEvent(
        producer=PRODUCER,
        subject=s.id,
        data=SubmissionSubmitted(
            submission_id=s.id,
            kind=kind,
            context_id=context_id,
            context_title=context_title,
            title=s.text.title,
            body=s.text.body,
            author_display_name=s.text.display_name,
            submitted_at=s.submitted_at,
            screening_flags=s.text.flags,
            reference=s.reference,
        ),
    )


class Intake:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        words: WordList,
        *,
        client_salt: str,
    ) -> None:
        self.sessions = sessions
        self.words = words
        self.client_salt = client_salt

    def screen_text(
        self,
        *,
        body: str,
        body_min: int,
        title: str | None = None,
        title_min: int = 5,
        display_name: str | None = None,
    ) -> Text:
        fields = [TextField("body", body, min_chars=body_min)]
        if title is not None:
            fields.insert(0, TextField("title", title, min_chars=title_min, multiline=False))
        if display_name:
            fields.append(
                TextField(
                    "display_name", display_name, min_chars=0, multiline=False, diacritics=False
                )
            )
        result: Screening = screen(fields, self.words)
        if not result.accepted:
            raise Refused(result.problems)
        return Text(
            title=result.cleaned.get("title"),
            body=result.cleaned["body"],
            display_name=result.cleaned.get("display_name") or None,
            flags=result.flags,
            held=result.held,
        )

    async def store(
        self, target: Target, text: Text, contact: Contact, idempotency_key: str | None
    ) -> Receipt:
        kind = target.kind
        digest = idempotency_digest(kind, target.key, idempotency_key) if idempotency_key else None
        token = new_status_token()
        async with self.sessions.begin() as session:
            now = utcnow()
            context = await target.load(session, now)
            columns = target.columns(context)
            content = content_digest(
                {
                    "title": text.title,
                    "body": text.body,
                    "display_name": text.display_name,
                    "email": contact.email,
                    "phone": contact.phone,
                    **columns,
                }
            )
            if digest is not None and (existing := await repo.by_idempotency(session, digest)):
                if existing["content_hash"] != content:
                    raise KeyReused(
                        "this Idempotency-Key was already used for another submission: "
                        "send a new key with new content"
                    )
                # A retried request: the same submission, and a fresh link to follow it.
                await repo.add_token(session, token_digest(token), existing["id"])
                return Receipt(
                    id=existing["id"],
                    reference=existing["reference"],
                    kind=kind,
                    state=existing["state"],
                    held=existing["held"],
                    submitted_at=existing["submitted_at"],
                    token=token,
                    repeated=True,
                )
            submission_id = str(uuid.uuid4())
            number = await repo.next_number(session)
            ref = reference(kind, now, number)
            await repo.insert_submission(
                session,
                {
                    "id": submission_id,
                    "number": number,
                    "reference": ref,
                    "kind": kind.value,
                    "state": RECEIVED,
                    "held": text.held,
                    "flags": text.flags,
                    "title": text.title,
                    "body": text.body,
                    "display_name": text.display_name,
                    "idempotency_hash": digest,
                    "content_hash": content if digest is not None else None,
                    "submitted_at": now,
                    **columns,
                },
            )
            if contact.email or contact.phone:
                await repo.add_contact(session, submission_id, contact.email, contact.phone)
            await repo.add_token(session, token_digest(token), submission_id)
            event = target.event(Stored(submission_id, ref, text, now, context))
            await outbox.add(session, target.topic, event)
        outbox.notify()
        log.info(
            "submission_received",
            submission_id=submission_id,
            kind=kind.value,
            reference=ref,
            flags=text.flags,
        )
        return Receipt(submission_id, ref, kind, RECEIVED, text.held, now, token)

    async def report(
        self,
        post_id: str,
        kinds: frozenset[SubmissionKind],
        *,
        reason: ReportReason,
        note: str | None,
        client_ip: str,
    ) -> tuple[str, bool]:
        """Report a published post; returns (report id, whether it is new for this client)."""
        async with self.sessions.begin() as session:
            row = await repo.get_submission(session, post_id)
            if (
                row is None
                or not row["public"]
                or SubmissionKind(row["kind"]) not in kinds & REPORTABLE_KINDS
            ):
                raise NotFound(f"post_id: no published post {post_id!r}")
            report_id = str(uuid.uuid4())
            count = await repo.add_report(
                session,
                {
                    "id": report_id,
                    "submission_id": post_id,
                    "reason": reason.value,
                    "note": note,
                    "client_hash": client_digest(client_ip, self.client_salt),
                },
            )
            if count is None:
                return report_id, False
            await outbox.add(
                session,
                SUBMISSION_REPORTED.name,
                SubmissionReportedEvent(
                    producer=PRODUCER,
                    subject=post_id,
                    data=SubmissionReported(
                        report_id=report_id,
                        submission_id=post_id,
                        kind=row["kind"],
                        reason=reason,
                        note=note,
                        reports=count,
                        reported_at=utcnow(),
                    ),
                ),
            )
        outbox.notify()
        log.info("post_reported", submission_id=post_id, reason=reason.value, reports=count)
        return report_id, True

    async def status(self, token: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        async with self.sessions() as session:
            row = await repo.submission_for_token(session, token_digest(token))
            if row is None:
                return None
            return row, await repo.steps_of(session, row["id"])
