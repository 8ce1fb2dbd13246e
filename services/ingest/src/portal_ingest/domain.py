"""The rules of ingest, free of I/O: revisions, idempotency, scope, API keys and partner status.

Everything here is pure and unit-tested without infrastructure; the use cases
(intake_usecases.py, usecases.py) load state, ask these functions what to do, and persist the
answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from pydantic_core import to_json

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    PublishedState,
    ReviewDecision,
)
from portal_contracts.codec import describe_validation_error
from portal_contracts.partner import PartnerArticleMessage

# -- partner status ---------------------------------------------------------------------------


class Status(StrEnum):
    """What a partner sees of an item as it travels the pipeline."""

    RECEIVED = "received"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PUBLISHED = "published"
    REJECTED = "rejected"
    RETRACTED = "retracted"


# Within one revision a status only moves forward; events of different topics may arrive in any
# order (a lagging consumer of article.normalized must not undo "published").
_RANK: dict[Status, int] = {
    Status.RECEIVED: 0,
    Status.IN_REVIEW: 1,
    Status.APPROVED: 2,
    Status.PUBLISHED: 3,
    Status.REJECTED: 3,  # an editor may reject an auto-published item: same rank, latest wins
    Status.RETRACTED: 4,
}


@dataclass(frozen=True)
class StatusState:
    revision: int
    status: Status


def should_apply_status(current: StatusState, revision: int, status: Status) -> bool:
    """Whether a pipeline event about ``revision`` changes the partner-visible status."""
    if revision < current.revision:
        return False  # about an older revision: the newest one is what the partner follows
    if revision > current.revision:
        return True
    if status == current.status:
        return False  # a repeat (redelivery, or two events that agree)
    return _RANK[status] >= _RANK[current.status]


def status_after_normalized(action: ArticleAction) -> Status | None:
    # A retraction is already "retracted" from the moment ingest accepts it.
    return Status.IN_REVIEW if action is ArticleAction.UPSERT else None


def status_after_review(decision: ReviewDecision) -> Status:
    return {
        ReviewDecision.APPROVED: Status.APPROVED,
        ReviewDecision.AUTO_PUBLISHED: Status.APPROVED,
        ReviewDecision.REJECTED: Status.REJECTED,
        ReviewDecision.RETRACTED: Status.RETRACTED,
    }[decision]


def status_after_published(state: PublishedState) -> Status:
    return Status.PUBLISHED if state is PublishedState.PUBLISHED else Status.RETRACTED


def status_on_ingest(action: ArticleAction) -> Status:
    return Status.RECEIVED if action is ArticleAction.UPSERT else Status.RETRACTED


RETRACTED_BY_SOURCE = "retracted by the source"

# -- idempotency and revisions ----------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """One byte form per JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(action: ArticleAction, content: ArticleContent | None) -> str:
    """SHA-256 of what the partner asked for, independent of key order, spacing and defaults.

    The revision number is left out on purpose: the same content re-sent is no new revision.
    """
    return content_digest(action, content)[0]


def content_digest(action: ArticleAction, content: ArticleContent | None) -> tuple[str, int]:
    """``content_hash``, and how many bytes the content takes in JSON (``null`` for none): an
    event that carries it spends as many on it (the same values; only the keys' order differs)."""
    document = None if content is None else content.model_dump(mode="json")
    written = _canonical_json_without_floats(document)
    # canonical_json of {"action": ..., "content": ...}: its keys in order, the content as written.
    canonical = b'{"action":' + to_json(action.value) + b',"content":' + written + b"}"
    return hashlib.sha256(canonical).hexdigest(), len(written)


def document_hash(action: ArticleAction, document: dict[str, Any] | None) -> str:
    """``content_hash`` of content already dumped as JSON values (``model_dump(mode="json")``)."""
    return hashlib.sha256(
        _canonical_json_without_floats({"action": action.value, "content": document})
    ).hexdigest()


def _canonical_json_without_floats(value: Any) -> bytes:
    """``canonical_json``'s bytes for a JSON value with no float in it (content has strings,
    lists, objects and nulls only; floats are written differently), at a fifth of the CPU:
    pydantic-core's encoder escapes exactly as the standard library's does."""
    return to_json(_keys_sorted(value))


def _keys_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _keys_sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_keys_sorted(item) for item in value]
    return value


class Outcome(StrEnum):
    NEW = "new"  # a new revision: archive, store, emit
    DUPLICATE = "duplicate"  # already have it: same answer, nothing emitted
    STALE = "stale"  # older than the newest revision
    CONFLICT = "conflict"  # the newest revision number, with other content
    UNKNOWN_ARTICLE = "unknown_article"  # e.g. retracting what was never sent


@dataclass(frozen=True)
class Latest:
    """The newest revision ingest holds of an article."""

    revision: int
    content_hash: str


@dataclass(frozen=True)
class RevisionDecision:
    outcome: Outcome
    revision: int
    reason: str | None = None


def decide_revision(
    latest: Latest | None,
    *,
    action: ArticleAction,
    requested: int | None,
    content_hash: str,
    hash_of_requested: str | None = None,
) -> RevisionDecision:
    """What to do with an incoming message of an article.

    ``requested`` is the partner's own revision number (None: number in arrival order);
    ``hash_of_requested`` the stored content hash of that revision number, if ingest has it.
    """
    if latest is None:
        if action is ArticleAction.RETRACT:
            return RevisionDecision(
                Outcome.UNKNOWN_ARTICLE,
                requested or 1,
                "the article was never received, so there is nothing to retract",
            )
        return RevisionDecision(Outcome.NEW, requested or 1)
    if requested is None:
        if content_hash == latest.content_hash:
            return RevisionDecision(Outcome.DUPLICATE, latest.revision)
        return RevisionDecision(Outcome.NEW, latest.revision + 1)
    if hash_of_requested is not None and hash_of_requested == content_hash:
        return RevisionDecision(Outcome.DUPLICATE, requested)  # a replay of a known revision
    if requested < latest.revision:
        return RevisionDecision(
            Outcome.STALE,
            requested,
            f"revision {requested} is older than the newest revision {latest.revision} "
            "of this article; send a revision greater than "
            f"{latest.revision} (or omit it)",
        )
    if requested == latest.revision:
        return RevisionDecision(
            Outcome.CONFLICT,
            requested,
            f"revision {requested} already exists with different content; send revision "
            f"{latest.revision + 1} or higher (or omit it)",
        )
    if content_hash == latest.content_hash:
        # A higher number but nothing changed: no new revision.
        return RevisionDecision(Outcome.DUPLICATE, latest.revision)
    return RevisionDecision(Outcome.NEW, requested)


class Revisions:
    """One article's revisions while its messages are decided one after the other (a push, or
    the messages of a batch in offset order): what the store holds, plus every revision
    accepted before, so a revision check sees the earlier members of its batch."""

    def __init__(self, latest: Latest | None, hashes: dict[int, str] | None = None) -> None:
        self.latest = latest
        self._hashes = dict(hashes or {})  # revision number -> content hash, where known

    def decide(
        self, *, action: ArticleAction, requested: int | None, content_hash: str
    ) -> RevisionDecision:
        return decide_revision(
            self.latest,
            action=action,
            requested=requested,
            content_hash=content_hash,
            hash_of_requested=None if requested is None else self._hashes.get(requested),
        )

    def accept(self, revision: int, content_hash: str) -> None:
        """``revision`` is the article's newest from now on."""
        self.latest = Latest(revision, content_hash)
        self._hashes[revision] = content_hash


# -- scope ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    code: str
    active: bool
    sections: tuple[str, ...]


def source_refusal(source: SourceInfo | None, code: str) -> str | None:
    """Why ``code`` may not send anything now, or None."""
    if source is None:
        return f"unknown source '{code}'"
    if not source.active:
        return f"source '{code}' is inactive"
    return None


def section_refusal(source: SourceInfo, content: ArticleContent | None) -> str | None:
    """Why the requested section is not allowed to this source, or None.

    Without a section the article goes to the review desk, which assigns one.
    """
    if content is None or content.section is None:
        return None
    if content.section in source.sections:
        return None
    allowed = ", ".join(source.sections) or "none"
    return (
        f"content.section: section '{content.section}' is not allowed for source "
        f"'{source.code}' (allowed: {allowed})"
    )


def access_refusal(article_source: str, caller_source: str, article_id: str) -> str | None:
    """Partners see only their own articles."""
    if article_source == caller_source:
        return None
    return f"article {article_id} belongs to another source"


# -- partner messages over Kafka --------------------------------------------------------------


class InvalidPartnerMessage(ValueError):
    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


# Refusals whose reason helps the partner fix the message: what they sent, or what the portal
# decided about it. Anything else is the portal's own failure (a bug, a routing slip): its detail
# (exception text, internal names) stays with the operators, in the dead letter and the log.
PARTNER_FACING_ERRORS = frozenset(
    {
        "decode",
        "size",
        "validation",
        "forbidden",
        "not_found",
        "stale_revision",
        "revision_conflict",
        "too_large",
        "unsupported_media",
    }
)
INTERNAL_FAILURE_REASON = (
    "the portal could not process this message because of an internal error; operators have "
    "the details (quote the topic, partition and offset); sending it again is safe"
)


def partner_reason(error_type: str, reason: str) -> str:
    """The reason a partner reads in ``GET /v1/errors`` for a refusal of this type."""
    return reason if error_type in PARTNER_FACING_ERRORS else INTERNAL_FAILURE_REASON


def parse_partner_message(value: bytes | None, max_bytes: int) -> PartnerArticleMessage:
    """A partner topic's message value as a PartnerArticleMessage; precise reason otherwise."""
    if value is None:
        raise InvalidPartnerMessage("empty message value (tombstone)", "decode")
    if len(value) > max_bytes:
        raise InvalidPartnerMessage(
            f"message of {len(value)} bytes exceeds the limit of {max_bytes} bytes", "size"
        )
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPartnerMessage(f"not valid UTF-8 JSON: {exc}", "decode") from exc
    if not isinstance(raw, dict):
        raise InvalidPartnerMessage("message value is not a JSON object", "decode")
    try:
        return PartnerArticleMessage.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPartnerMessage(describe_validation_error(exc), "validation") from exc


def external_id_hint(value: bytes | None) -> str | None:
    """The external_id of an invalid message, if it can be read, so the partner finds it."""
    if not value:
        return None
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    ext = raw.get("external_id") if isinstance(raw, dict) else None
    return ext[:200] if isinstance(ext, str) else None


# -- raw archive ------------------------------------------------------------------------------


def raw_object_key(source: str, external_id: str, raw: bytes) -> str:
    """``raw/<source>/<external_id>/<sha256>.json``; the id is one key segment.

    Named by content, not by revision: the original is archived before the revision is decided
    (outside the transaction), and the same bytes sent again land on the same object.
    """
    segment = quote(external_id, safe="-_.:~")
    if set(segment) <= {"."}:  # "." or "..": never a path step in any S3 implementation
        segment = segment.replace(".", "%2E")
    digest = hashlib.sha256(raw).hexdigest()
    return f"raw/{source}/{segment}/{digest}.json"


# -- API keys ---------------------------------------------------------------------------------

API_KEY_PREFIX = "pk"
_KEY_RE = re.compile(r"^pk_([0-9a-f]{16})_([A-Za-z0-9_-]{32,128})$")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{API_KEY_PREFIX}_{self.key_id}_{self.secret}"


def new_api_key() -> IssuedKey:
    # 256 bits of randomness: a fast hash is enough (nothing to brute-force), unlike passwords.
    return IssuedKey(key_id=secrets.token_hex(8), secret=secrets.token_urlsafe(32))


def parse_api_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    match = _KEY_RE.match(token.strip())
    return (match.group(1), match.group(2)) if match else None


def hash_api_key(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}.{secret}".encode()).hexdigest()


def verify_api_key(key_id: str, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key_id, secret), stored_hash)


# -- Kafka credentials ------------------------------------------------------------------------

_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def kafka_username(source: str) -> str:
    # A prefix keeps partner principals apart from the platform's own (e.g. a super user).
    return f"partner-{source}"


def new_kafka_password(length: int = 40) -> str:
    """Letters and digits only: Kafka tools and client configs parse other characters."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


# -- paging -----------------------------------------------------------------------------------


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor points after; ValueError for anything not made by encode_cursor."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("cursor is not valid") from exc
    if not text.startswith("s") or not text[1:].isdigit():
        raise ValueError("cursor is not valid")
    return int(text[1:])


def allowed_sections(sections: Collection[str]) -> tuple[str, ...]:
    """Sections without repeats, in the order given."""
    return tuple(dict.fromkeys(sections))
