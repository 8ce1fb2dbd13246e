"""Publishing rules, free of I/O: which review decision changes the public state, slugs, cursors.

The published store keeps one row per article: its newest published revision (or a retraction).
A review decision is applied only if its revision is not older than the stored one, so the store
converges whatever the order in which decisions arrive, and can be rebuilt by replaying them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from portal_contracts.articles import (
    ArticleReviewed,
    NormalizedArticle,
    PublishedState,
    ReviewDecision,
)
from portal_text import slugify

ARTICLE_PATH_PREFIX = "/bai-viet/"
SLUG_TITLE_MAX = 80
SLUG_ID_CHARS = 8


class Outcome(StrEnum):
    PUBLISH = "publish"  # first publication, or republication after a retraction
    UPDATE = "update"  # a newer revision, or an editorial update of the same revision
    RETRACT = "retract"  # removed from every listing; its page answers 410
    TOMBSTONE = "tombstone"  # retraction of an article never published: remember the revision
    IGNORE = "ignore"


@dataclass(frozen=True)
class Stored:
    """What the store knows of an article, as far as the rules need it."""

    revision: int
    state: PublishedState
    fingerprint: str | None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str

    @property
    def emits(self) -> bool:
        """Whether the public state changes (and so an article.published event is due)."""
        return self.outcome in (Outcome.PUBLISH, Outcome.UPDATE, Outcome.RETRACT)


class InvalidReview(ValueError):
    """A decision that can never be applied (dead-letter it)."""


_PUBLISHING = (ReviewDecision.APPROVED, ReviewDecision.AUTO_PUBLISHED)


def decide(stored: Stored | None, review: ArticleReviewed, fingerprint: str | None) -> Decision:
    """Apply the revision rules to one review decision.

    * approved / auto_published: publish when the revision is >= the stored one (equal is an
      editorial update); older revisions are ignored. After a retraction only a strictly newer
      revision republishes: a late approval of the retracted revision must not undo it.
    * rejected: never changes the public state (the rejected revision is simply not published).
    * retracted: removes the article when the revision is >= the stored one.
    """
    if review.decision in _PUBLISHING:
        if review.article is None:
            raise InvalidReview(f"decision {review.decision.value!r} carries no article")
        if stored is None:
            return Decision(Outcome.PUBLISH, "first publication")
        if review.revision < stored.revision:
            return Decision(
                Outcome.IGNORE, f"revision {review.revision} older than {stored.revision}"
            )
        if stored.state == PublishedState.RETRACTED:
            if review.revision == stored.revision:
                return Decision(Outcome.IGNORE, f"revision {review.revision} was retracted")
            return Decision(Outcome.PUBLISH, "newer revision after a retraction")
        if review.revision == stored.revision and fingerprint == stored.fingerprint:
            return Decision(Outcome.IGNORE, "same revision, same content")
        return Decision(Outcome.UPDATE, "newer revision or editorial update")
    if review.decision == ReviewDecision.REJECTED:
        return Decision(Outcome.IGNORE, "rejected revisions are not published")
    # Retracted.
    if stored is None:
        return Decision(Outcome.TOMBSTONE, "retracted before publication")
    if review.revision < stored.revision:
        return Decision(Outcome.IGNORE, f"revision {review.revision} older than {stored.revision}")
    if stored.state == PublishedState.RETRACTED:
        # Keep the newest revision so a late approval of an older one stays ignored.
        return Decision(Outcome.TOMBSTONE, "already retracted")
    return Decision(Outcome.RETRACT, "retracted")


def fingerprint(source: str, article: NormalizedArticle) -> str:
    """Hash of what the public sees of a revision: an unchanged re-approval changes nothing."""
    payload = json.dumps(
        {"source": source, "article": article.model_dump(mode="json")},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def make_slug(title: str, article_id: str) -> str:
    """'<slugified title>-<first 8 chars of the id>': readable, unique and kept for good."""
    suffix = article_id.replace("-", "").lower()[:SLUG_ID_CHARS]
    base = slugify(title, max_length=SLUG_TITLE_MAX)
    return f"{base}-{suffix}" if base else suffix


def fallback_slug(title: str, article_id: str) -> str:
    """Slug when the short one is already taken by another article (a 32-bit id collision)."""
    suffix = article_id.replace("-", "").lower()
    base = slugify(title, max_length=SLUG_TITLE_MAX)
    return f"{base}-{suffix}" if base else suffix


def url_path_for(slug: str) -> str:
    return f"{ARTICLE_PATH_PREFIX}{slug}"


def later(a: datetime, b: datetime) -> datetime:
    return a if a >= b else b


# --- Cursors ------------------------------------------------------------------------------------

MAX_CURSOR_CHARS = 512
_TAG_BYTES = 12


class CursorError(ValueError):
    """A cursor that was not produced by this service for this list; the reason is for people."""


@dataclass(frozen=True, order=True)
class Cursor:
    """Position after the last item of a page, in (published_at desc, article_id desc) order."""

    published_at: datetime
    article_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, scope: str, body: bytes) -> bytes:
    # The scope (which list) is signed too: a cursor of one list is refused by another.
    return hmac.new(key, scope.encode() + b"\x00" + body, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(cursor: Cursor, *, scope: str, key: bytes) -> str:
    body = json.dumps(
        {"t": cursor.published_at.isoformat(), "id": cursor.article_id}, separators=(",", ":")
    ).encode()
    return f"{_b64(body)}.{_b64(_tag(key, scope, body))}"


def decode_cursor(token: str, *, scope: str, key: bytes) -> Cursor:
    if len(token) > MAX_CURSOR_CHARS:
        raise CursorError("cursor is too long")
    body_part, dot, tag_part = token.partition(".")
    if not dot or not body_part or not tag_part:
        raise CursorError("cursor is malformed")
    try:
        body = _unb64(body_part)
        tag = _unb64(tag_part)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not valid base64url") from exc
    if not hmac.compare_digest(tag, _tag(key, scope, body)):
        raise CursorError("cursor was altered or belongs to another list")
    try:
        raw = json.loads(body)
        published_at = datetime.fromisoformat(raw["t"])
        article_id = raw["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorError("cursor content is invalid") from exc
    if published_at.tzinfo is None or not isinstance(article_id, str) or not article_id:
        raise CursorError("cursor content is invalid")
    return Cursor(published_at=published_at, article_id=article_id)
