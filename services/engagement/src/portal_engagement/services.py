"""Use cases of the engagement block: take submissions, follow moderation, answer readers.

Every accepted submission is stored with its outgoing event in one transaction (the outbox);
its contact details go to their own table in the same transaction and never into the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticlePublishedEvent, PublishedState
from portal_contracts.envelope import Envelope
from portal_contracts.questions import (
    QuestionAnsweredEvent,
    QuestionSubmitted,
    QuestionSubmittedEvent,
)
from portal_contracts.submissions import (
    ReportReason,
    SubmissionKind,
    SubmissionModeratedEvent,
    SubmissionReported,
    SubmissionReportedEvent,
    SubmissionState,
    SubmissionSubmitted,
    SubmissionSubmittedEvent,
)
from portal_contracts.topics import (
    QUESTION_SUBMITTED,
    SUBMISSION_REPORTED,
    SUBMISSION_SUBMITTED,
)
from portal_engagement import repository as repo
from portal_engagement.db import forum_topics, outbox, qa_topics
from portal_engagement.domain import (
    PRODUCER,
    QUESTION_KINDS,
    RECEIVED,
    REPORTABLE_KINDS,
    Current,
    DialogueTimes,
    after_moderation,
    answer_applies,
    answer_visible,
    client_digest,
    dialogue_refusal,
    feedback_refusal,
    idempotency_digest,
    new_status_token,
    reference,
    title_from_body,
    token_digest,
)
from portal_engagement.screening import Problem, Screening, TextField, WordList, screen
from portal_runtime.batch import Message, newest_per_key
from portal_runtime.logs import get_logger
from portal_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Refused(Exception):
    """The text fails screening (HTTP 422); each problem names its field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class NotFound(Exception):
    """What the submission is about does not exist or is not public (HTTP 404)."""


class Closed(Exception):
    """What the submission is about takes none now: a dialogue ended, a deadline passed (409)."""


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None


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
class Text:
    """The screened text of a submission."""

    title: str | None
    body: str
    display_name: str | None
    flags: list[str]
    held: bool


@dataclass(frozen=True)
class Stored:
    """What an event builder knows of a submission just stored."""

    id: str
    reference: str
    text: Text
    submitted_at: datetime
    context: dict[str, Any]


EventBuilder = Callable[[Stored], Envelope]
ContextLoader = Callable[[AsyncSession, datetime], Awaitable[dict[str, Any]]]


def _current(row: dict[str, Any]) -> Current:
    return Current(
        kind=SubmissionKind(row["kind"]),
        state=row["state"],
        moderation_revision=row["moderation_revision"],
        answer_revision=row["answer_revision"],
        public=row["public"],
    )


class Engagement:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        words: WordList,
        *,
        client_salt: str = "",
    ) -> None:
        self.sessions = sessions
        self.words = words
        self.client_salt = client_salt

    # ---------------------------------------------------------------- screening

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

    # ---------------------------------------------------------------- storing

    async def _store(
        self,
        kind: SubmissionKind,
        text: Text,
        contact: Contact,
        *,
        context_key: str,
        idempotency_key: str | None,
        load_context: ContextLoader,
        columns: Callable[[dict[str, Any]], dict[str, Any]],
        build_event: EventBuilder,
        topic: str,
    ) -> Receipt:
        digest = idempotency_digest(kind, context_key, idempotency_key) if idempotency_key else None
        token = new_status_token()
        async with self.sessions.begin() as session:
            now = utcnow()
            context = await load_context(session, now)
            if digest is not None:
                existing = await repo.by_idempotency(session, digest)
                if existing is not None:
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
                    "submitted_at": now,
                    **columns(context),
                },
            )
            if contact.email or contact.phone:
                await repo.add_contact(session, submission_id, contact.email, contact.phone)
            await repo.add_token(session, token_digest(token), submission_id)
            event = build_event(Stored(submission_id, ref, text, now, context))
            await outbox.add(session, topic, event)
        outbox.notify()
        log.info(
            "submission_received",
            submission_id=submission_id,
            kind=kind.value,
            reference=ref,
            flags=text.flags,
        )
        return Receipt(submission_id, ref, kind, RECEIVED, text.held, now, token)

    # ---------------------------------------------------------------- Q&A

    async def ask_question(
        self,
        *,
        topic: str,
        agency: str | None,
        text: Text,
        contact: Contact,
        idempotency_key: str | None,
    ) -> Receipt:
        async def load(session: AsyncSession, now: datetime) -> dict[str, Any]:
            row = await repo.get_topic(session, qa_topics, topic)
            if row is None or not row["active"]:
                raise NotFound(f"topic: no Q&A topic {topic!r} (see GET /v1/qa/topics)")
            return row

        def event(s: Stored) -> Envelope:
            return QuestionSubmittedEvent(
                producer=PRODUCER,
                subject=s.id,
                data=QuestionSubmitted(
                    question_id=s.id,
                    kind="qa",
                    topic=topic,
                    agency=agency,
                    title=s.text.title or title_from_body(s.text.body),
                    body=s.text.body,
                    asker_display_name=s.text.display_name,
                    submitted_at=s.submitted_at,
                    screening_flags=s.text.flags,
                    reference=s.reference,
                ),
            )

        return await self._store(
            SubmissionKind.QA,
            text,
            contact,
            context_key=topic,
            idempotency_key=idempotency_key,
            load_context=load,
            columns=lambda _: {"topic": topic, "agency": agency},
            build_event=event,
            topic=QUESTION_SUBMITTED.name,
        )

    # ---------------------------------------------------------------- dialogues

    async def ask_dialogue(
        self, code: str, *, text: Text, contact: Contact, idempotency_key: str | None
    ) -> Receipt:
        async def load(session: AsyncSession, now: datetime) -> dict[str, Any]:
            row = await repo.get_dialogue(session, code)
            if row is None:
                raise NotFound(f"dialogue: no dialogue {code!r}")
            refusal = dialogue_refusal(
                DialogueTimes(row["questions_open_at"], row["starts_at"], row["ends_at"]), now
            )
            if refusal:
                raise Closed(refusal)
            return row

        def event(s: Stored) -> Envelope:
            return QuestionSubmittedEvent(
                producer=PRODUCER,
                subject=s.id,
                data=QuestionSubmitted(
                    question_id=s.id,
                    kind="dialogue",
                    dialogue_id=code,
                    context_title=s.context["title"],
                    topic=s.context["topic"],
                    title=title_from_body(s.text.body),
                    body=s.text.body,
                    asker_display_name=s.text.display_name,
                    submitted_at=s.submitted_at,
                    screening_flags=s.text.flags,
                    reference=s.reference,
                ),
            )

        return await self._store(
            SubmissionKind.DIALOGUE,
            text,
            contact,
            context_key=code,
            idempotency_key=idempotency_key,
            load_context=load,
            columns=lambda ctx: {"dialogue_code": code, "topic": ctx["topic"]},
            build_event=event,
            topic=QUESTION_SUBMITTED.name,
        )

    # ---------------------------------------------------------------- feedback

    async def give_feedback(
        self,
        code: str,
        *,
        section: str | None,
        text: Text,
        contact: Contact,
        idempotency_key: str | None,
    ) -> Receipt:
        async def load(session: AsyncSession, now: datetime) -> dict[str, Any]:
            row = await repo.get_document(session, code)
            if row is None:
                raise NotFound(f"document: no document {code!r} open for feedback")
            refusal = feedback_refusal(row["opens_at"], row["deadline"], now)
            if refusal:
                raise Closed(refusal)
            section_title = None
            if section is not None:
                titles = {s["code"]: s["title"] for s in row["sections"]}
                if section not in titles:
                    raise Refused(
                        [
                            Problem(
                                "section",
                                f"the document has no section {section!r} "
                                f"(it has {', '.join(titles) or 'none'})",
                                "unknown_section",
                            )
                        ]
                    )
                section_title = titles[section]
            return {**row, "section_title": section_title}

        def event(s: Stored) -> Envelope:
            return SubmissionSubmittedEvent(
                producer=PRODUCER,
                subject=s.id,
                data=SubmissionSubmitted(
                    submission_id=s.id,
                    kind="feedback",
                    context_id=code,
                    context_title=s.context["title"],
                    section_id=section,
                    section_title=s.context["section_title"],
                    body=s.text.body,
                    author_display_name=s.text.display_name,
                    submitted_at=s.submitted_at,
                    screening_flags=s.text.flags,
                    reference=s.reference,
                ),
            )

        return await self._store(
            SubmissionKind.FEEDBACK,
            text,
            contact,
            context_key=f"{code}/{section or ''}",
            idempotency_key=idempotency_key,
            load_context=load,
            columns=lambda _: {"document_code": code, "section_code": section},
            build_event=event,
            topic=SUBMISSION_SUBMITTED.name,
        )

    # ---------------------------------------------------------------- forum and comments

    def _post_event(self, kind: str, context_id: str, context_title: str | None) -> EventBuilder:
        def event(s: Stored) -> Envelope:
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

        return event

    async def open_thread(
        self, topic: str, *, text: Text, contact: Contact, idempotency_key: str | None
    ) -> Receipt:
        found: dict[str, Any] = {}

        async def load(session: AsyncSession, now: datetime) -> dict[str, Any]:
            row = await repo.get_topic(session, forum_topics, topic)
            if row is None or not row["active"]:
                raise NotFound(f"topic: no forum topic {topic!r} (see GET /v1/forum/topics)")
            found.update(row)
            return row

        def event(s: Stored) -> Envelope:
            return self._post_event("forum_thread", topic, found.get("name"))(s)

        return await self._store(
            SubmissionKind.FORUM_THREAD,
            text,
            contact,
            context_key=topic,
            idempotency_key=idempotency_key,
            load_context=load,
            columns=lambda _: {"forum_topic": topic},
            build_event=event,
            topic=SUBMISSION_SUBMITTED.name,
        )

    async def reply(
        self, thread_id: str, *, text: Text, contact: Contact, idempotency_key: str | None
    ) -> Receipt:
        found: dict[str, Any] = {}

        async def load(session: AsyncSession, now: datetime) -> dict[str, Any]:
            row = await repo.public_submission(session, thread_id, SubmissionKind.FORUM_THREAD)
            if row is None:
                raise NotFound(f"thread_id: no published thread {thread_id!r}")
            found.update(row)
            return row

        def event(s: Stored) -> Envelope:
            return self._post_event("forum_reply", thread_id, found.get("title"))(s)

        return await self._store(
            SubmissionKind.FORUM_REPLY,
            text,
            contact,
            context_key=thread_id,
            idempotency_key=idempotency_key,
            load_context=load,
            columns=lambda ctx: {"thread_id": thread_id, "forum_topic": ctx["forum_topic"]},
            build_event=event,
            topic=SUBMISSION_SUBMITTED.name,
        )

    async def comment(
        self, article_id: str, *, text: Text, contact: Contact, idempotency_key: str | None
    ) -> Receipt:
        found: dict[str, Any] = {}

        async def load(session: AsyncSession, now: datetime) -> dict[str, Any]:
            row = await repo.get_article(session, article_id)
            if row is None or row["state"] != PublishedState.PUBLISHED.value:
                raise NotFound(f"article_id: no published article {article_id!r}")
            found.update(row)
            return row

        def event(s: Stored) -> Envelope:
            return self._post_event("comment", article_id, found.get("title"))(s)

        return await self._store(
            SubmissionKind.COMMENT,
            text,
            contact,
            context_key=article_id,
            idempotency_key=idempotency_key,
            load_context=load,
            columns=lambda _: {"article_id": article_id},
            build_event=event,
            topic=SUBMISSION_SUBMITTED.name,
        )

    # ---------------------------------------------------------------- reports

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

    # ---------------------------------------------------------------- status link

    async def status(self, token: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        async with self.sessions() as session:
            row = await repo.submission_for_token(session, token_digest(token))
            if row is None:
                return None
            return row, await repo.steps_of(session, row["id"])

    # ---------------------------------------------------------------- events from moderation

    async def on_answered(
        self, batch: list[Message[QuestionAnsweredEvent]], uow: UnitOfWork
    ) -> None:
        """Answers from the desk: the Q&A page, the dialogue transcript and its live stream."""
        session = await uow.session()
        for message in batch:  # offset order: a question's answers arrive in revision order
            data = message.event.data
            if message.event.subject != data.question_id:
                uow.reject(message, "subject: is not the question id", "invalid")
                continue
            row = await repo.lock_submission(session, data.question_id)
            if row is None or SubmissionKind(row["kind"]) not in QUESTION_KINDS:
                uow.reject(
                    message,
                    f"question_id: no question {data.question_id} was submitted here",
                    "unknown",
                )
                continue
            current = _current(row)
            if not answer_applies(current, data.revision):
                continue  # an older answer than the one shown
            public = answer_visible(current, data.revision, data.state == "published")
            values: dict[str, Any] = {
                "answer_revision": data.revision,
                "answer_html": data.answer_html,
                "answered_by": data.answered_by,
                "answered_at": data.answered_at,
                "public": public,
                "routed_agency": row["routed_agency"] or data.agency,
            }
            if public and row["published_at"] is None:
                values["published_at"] = data.answered_at
            await repo.update_submission(session, data.question_id, values)
            if row["dialogue_code"] and (public or row["public"]):
                payload = _live_payload({**row, **values})
                await repo.add_dialogue_event(
                    session,
                    row["dialogue_code"],
                    data.question_id,
                    "answer" if public else "withdrawn",
                    payload,
                )

    async def on_moderated(
        self, batch: list[Message[SubmissionModeratedEvent]], uow: UnitOfWork
    ) -> None:
        """Moderation steps: a step on the submitter's status link; posts become public."""
        session = await uow.session()
        for message in batch:
            data = message.event.data
            if message.event.subject != data.submission_id:
                uow.reject(message, "subject: is not the submission id", "invalid")
                continue
            row = await repo.lock_submission(session, data.submission_id)
            if row is None:
                uow.reject(
                    message,
                    f"submission_id: no submission {data.submission_id} was made here",
                    "unknown",
                )
                continue
            after = after_moderation(_current(row), data.revision, data.state)
            if after is None:
                continue  # an older step than the one recorded
            values: dict[str, Any] = {
                "state": after.state,
                "moderation_revision": data.revision,
                "public": after.public,
            }
            if data.state in (SubmissionState.REJECTED, SubmissionState.WITHDRAWN):
                values["reason"] = data.reason
            if data.state is SubmissionState.ROUTED and data.agency:
                values["routed_agency"] = data.agency
            if after.public and row["published_at"] is None:
                values["published_at"] = data.moderated_at
            await repo.update_submission(session, data.submission_id, values)
            await repo.add_step(
                session,
                {
                    "submission_id": data.submission_id,
                    "state": data.state.value,
                    "revision": data.revision,
                    "agency": data.agency,
                    "note": data.reason,
                    "at": data.moderated_at,
                },
            )
            code = row["dialogue_code"]
            if code and data.state is SubmissionState.PICKED:
                await repo.add_dialogue_event(
                    session, code, data.submission_id, "question", _live_payload({**row, **values})
                )
            elif code and row["public"] and not after.public:
                await repo.add_dialogue_event(
                    session, code, data.submission_id, "withdrawn", _live_payload({**row, **values})
                )

    async def on_articles(
        self, batch: list[Message[ArticlePublishedEvent]], uow: UnitOfWork
    ) -> None:
        """Which articles take comments (only public ones): the newest revision of each, kept
        unless a newer one is already there (one statement for the batch)."""
        newest = newest_per_key(batch, lambda e: e.data.article_id, lambda e: e.data.revision)
        await repo.upsert_articles(
            await uow.session(),
            [
                {
                    "article_id": d.article_id,
                    "revision": d.revision,
                    "state": d.state.value,
                    "slug": d.slug,
                    "url_path": d.url_path,
                    "title": d.article.title if d.article else None,
                }
                for d in (m.event.data for m in newest.values())
            ],
        )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _live_payload(row: dict[str, Any]) -> dict[str, Any]:
    """What a live reader gets: the public question and answer, nothing about the asker but
    the name they chose to show."""
    return {
        "question_id": row["id"],
        "question": row["body"],
        "asker": row["display_name"],
        "asked_at": _iso(row["submitted_at"]),
        "answer_html": row.get("answer_html"),
        "answered_by": row.get("answered_by"),
        "answered_at": _iso(row.get("answered_at")),
    }
