"""The engagement block's rules: pure logic, no I/O.

* What a submission is called (its reference) and the states its private status link shows.
* When a dialogue takes questions and when it is live; when a document takes feedback.
* What a moderation step or a published answer does to a submission (newer revisions only).
* Contact details: checked and normalised here, stored apart, never published.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from portal_contracts.submissions import SubmissionKind, SubmissionState

PRODUCER = "engagement"
# Readers are in Vietnam: times are stored in UTC and shown in local time by the frontends.
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

RECEIVED = "received"

# A short human reference, on the acknowledgement and in every message to the submitter.
REFERENCE_PREFIX: dict[SubmissionKind, str] = {
    SubmissionKind.QA: "HD",  # hỏi đáp
    SubmissionKind.DIALOGUE: "DT",  # đối thoại
    SubmissionKind.FEEDBACK: "GY",  # góp ý
    SubmissionKind.FORUM_THREAD: "DD",  # diễn đàn
    SubmissionKind.FORUM_REPLY: "DD",
    SubmissionKind.COMMENT: "BL",  # bình luận
}

QUESTION_KINDS = frozenset({SubmissionKind.QA, SubmissionKind.DIALOGUE})
REPORTABLE_KINDS = frozenset(
    {SubmissionKind.FORUM_THREAD, SubmissionKind.FORUM_REPLY, SubmissionKind.COMMENT}
)

# What the status link says at each step (Vietnamese: it is shown to the public as is).
STEP_LABELS: dict[str, str] = {
    RECEIVED: "Đã nhận",
    SubmissionState.ACCEPTED: "Đã tiếp nhận, đang xử lý",
    SubmissionState.ROUTED: "Đã chuyển tới cơ quan trả lời",
    SubmissionState.PICKED: "Đã được chọn để khách mời trả lời",
    SubmissionState.ANSWERED: "Đã có câu trả lời, đang duyệt",
    SubmissionState.PUBLISHED: "Đã đăng",
    SubmissionState.REJECTED: "Không được đăng",
    SubmissionState.WITHDRAWN: "Đã gỡ",
}
HELD_LABEL = "Đã nhận, chờ biên tập viên xem xét"


def reference(kind: SubmissionKind, at: datetime, number: int) -> str:
    """'HD-2026-000123': the kind, the year (Vietnam time) and a running number."""
    return f"{REFERENCE_PREFIX[kind]}-{at.astimezone(VIETNAM).year}-{number:06d}"


# --- private status links -------------------------------------------------------------------


def new_status_token() -> str:
    """256 random bits: the link cannot be guessed, so it needs no sign-in."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def idempotency_digest(kind: SubmissionKind, context: str, key: str) -> str:
    return hashlib.sha256(f"{kind.value}\x00{context}\x00{key}".encode()).hexdigest()


def content_digest(fields: Mapping[str, object]) -> str:
    """What a submission says and who sent it (contact details included): a request that
    replays an Idempotency-Key must carry the same, or it is someone else's or another text."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- contact details ------------------------------------------------------------------------

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}$")
_PHONE_CHARS = re.compile(r"[\s().-]")
_PHONE = re.compile(r"^(?:\+84|0084|0)(\d{9,10})$")


class InvalidContact(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalize_email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    email = value.strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidContact("email", "not an e-mail address (like ten@example.vn)")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def normalize_phone(value: str | None) -> str | None:
    """A Vietnamese number as +84…; '0912 345 678' and '+84 912-345-678' are the same."""
    if value is None or not value.strip():
        return None
    match = _PHONE.match(_PHONE_CHARS.sub("", value.strip()))
    if not match:
        raise InvalidContact("phone", "not a Vietnamese phone number (like 0912 345 678)")
    return f"+84{match.group(1)}"


def identity_key(email: str | None, phone: str | None) -> str | None:
    """Who is submitting, for the per-identity rate limit (normalised contact, hashed)."""
    parts = [p.lower() for p in (email, phone) if p]
    if not parts:
        return None
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def client_digest(client_ip: str, salt: str) -> str:
    """A reader's IP as stored (de-duplication of reports): never the address itself."""
    return hashlib.sha256(f"{salt}\x00{client_ip}".encode()).hexdigest()


# --- dialogues and feedback windows ---------------------------------------------------------

DialoguePhase = Literal["upcoming", "live", "ended"]
FeedbackPhase = Literal["upcoming", "open", "closed"]


@dataclass(frozen=True)
class DialogueTimes:
    questions_open_at: datetime | None  # None: questions are taken from the announcement on
    starts_at: datetime
    ends_at: datetime


def dialogue_phase(times: DialogueTimes, now: datetime) -> DialoguePhase:
    if now < times.starts_at:
        return "upcoming"
    if now < times.ends_at:
        return "live"
    return "ended"


def dialogue_refusal(times: DialogueTimes, now: datetime) -> str | None:
    """Why the dialogue takes no question now, or None: questions come before and during it."""
    if times.questions_open_at is not None and now < times.questions_open_at:
        return "dialogue: questions are taken from " + _local(times.questions_open_at)
    if now >= times.ends_at:
        return "dialogue: the session has ended; read its transcript"
    return None


def feedback_phase(opens_at: datetime, deadline: datetime, now: datetime) -> FeedbackPhase:
    if now < opens_at:
        return "upcoming"
    if now < deadline:
        return "open"
    return "closed"


def feedback_refusal(opens_at: datetime, deadline: datetime, now: datetime) -> str | None:
    phase = feedback_phase(opens_at, deadline, now)
    if phase == "upcoming":
        return "document: feedback opens at " + _local(opens_at)
    if phase == "closed":
        return "document: the deadline for feedback passed at " + _local(deadline)
    return None


def _local(at: datetime) -> str:
    return at.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y (giờ Việt Nam)")


def validate_times(
    *, starts_at: datetime, ends_at: datetime, questions_open_at: datetime | None
) -> str | None:
    if ends_at <= starts_at:
        return "ends_at: must be after starts_at"
    if questions_open_at is not None and questions_open_at > starts_at:
        return "questions_open_at: must not be after starts_at"
    return None


# --- moderation results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Current:
    """What the rules need to know of a stored submission."""

    kind: SubmissionKind
    state: str
    moderation_revision: int
    answer_revision: int | None
    public: bool


@dataclass(frozen=True)
class AfterStep:
    state: str
    public: bool


def after_moderation(current: Current, revision: int, state: SubmissionState) -> AfterStep | None:
    """A moderation step applied to a submission; None when it is not newer (ignore it).

    A post (forum, comment) is public exactly while its newest step is "published". A question
    becomes public through its published answer (question.answered), so a step leaves its
    visibility alone except a rejection or withdrawal, which hides it.
    """
    if revision <= current.moderation_revision:
        return None
    if current.kind in QUESTION_KINDS:
        hidden = state in (SubmissionState.REJECTED, SubmissionState.WITHDRAWN)
        return AfterStep(state.value, current.public and not hidden)
    if current.kind is SubmissionKind.FEEDBACK:
        return AfterStep(state.value, False)  # feedback goes to the officials, never public
    return AfterStep(state.value, state is SubmissionState.PUBLISHED)


def answer_applies(current: Current, revision: int) -> bool:
    return current.answer_revision is None or revision > current.answer_revision


def answer_visible(current: Current, revision: int, published: bool) -> bool:
    """Whether a question is public after its answer at ``revision``.

    Answers and moderation steps share one revision counter (moderation's), but travel on two
    topics: a newer rejection or withdrawal that arrived first keeps the question hidden.
    """
    hidden_later = current.moderation_revision > revision and current.state in (
        SubmissionState.REJECTED,
        SubmissionState.WITHDRAWN,
    )
    return published and not hidden_later


def status_label(state: str, held: bool) -> str:
    if state == RECEIVED and held:
        return HELD_LABEL
    return STEP_LABELS.get(state, state)


def title_from_body(body: str, max_chars: int = 120) -> str:
    """A dialogue question has no title: its first words stand for one (moderation lists it)."""
    line = body.split("\n", 1)[0].strip()
    if len(line) <= max_chars:
        return line
    cut = line[:max_chars].rsplit(" ", 1)[0]
    return f"{cut}…"
