"""The review desk's rules: pure logic, no I/O.

* Who may do what (roles, an agency publisher's own source).
* What an incoming normalised revision does to a review item (trust policy, retractions,
  newer revisions of published articles going back to review).
* What an editor's decision does (state transitions, the revision as an optimistic lock).
* The article.reviewed event a decision emits.
* The desk's own rules: which pages a role sees, the item version as the editors' lock, who
  has an item open, quality flags, category -> section mapping, backlog age buckets.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from portal_contracts.articles import (
    ArticleAction,
    ArticleReviewed,
    ArticleReviewedEvent,
    MediaRef,
    NormalizedArticle,
    QualityReport,
    ReviewDecision,
)
from portal_contracts.codec import describe_validation_error

PRODUCER = "moderation"
TRUSTED_REVIEWER = "policy:trusted"
PARTNER_REVIEWER = "partner"


class Role(StrEnum):
    ADMIN = "admin"
    CHIEF_EDITOR = "chief_editor"
    EDITOR = "editor"
    AGENCY_PUBLISHER = "agency_publisher"


class Policy(StrEnum):
    PRE_REVIEW = "pre-review"  # published only after an editor approves (the default)
    TRUSTED = "trusted"  # published at once, reviewed after


DEFAULT_POLICY = Policy.PRE_REVIEW


class ItemState(StrEnum):
    PENDING = "pending"  # waiting for an editor (pre-review)
    AUTO_PUBLISHED = "auto_published"  # public by trust policy, waiting for post-review
    PUBLISHED = "published"  # approved by an editor
    REJECTED = "rejected"
    RETRACTED = "retracted"


class Action(StrEnum):
    VIEW = "view"
    APPROVE = "approve"
    REJECT = "reject"
    EDIT = "edit"
    RETRACT = "retract"


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.CHIEF_EDITOR: frozenset(Action),
    Role.EDITOR: frozenset({Action.VIEW, Action.APPROVE, Action.REJECT, Action.EDIT}),
    Role.AGENCY_PUBLISHER: frozenset({Action.VIEW}),
}

PUBLIC_STATES = frozenset({ItemState.AUTO_PUBLISHED, ItemState.PUBLISHED})


class Forbidden(Exception):
    """The signed-in user may not do this (HTTP 403)."""


class InvalidEdit(ValueError):
    """An edit that would leave the article invalid (HTTP 422); the message names the field."""


class Conflict(Exception):
    """The item is not in a state for this action, or moved on meanwhile (HTTP 409)."""

    def __init__(self, reason: str, *, current_revision: int, state: ItemState) -> None:
        super().__init__(reason)
        self.reason = reason
        self.current_revision = current_revision
        self.state = state


@dataclass(frozen=True)
class Editor:
    username: str
    role: Role
    source: str | None = None  # only an agency publisher's own source
    display_name: str = ""


def authorize(editor: Editor, action: Action, item_source: str | None = None) -> None:
    """Raise ``Forbidden`` unless ``editor`` may do ``action`` (on an item of ``item_source``)."""
    if action not in PERMISSIONS[editor.role]:
        raise Forbidden(f"role {editor.role.value} may not {action.value} items")
    if (
        editor.role is Role.AGENCY_PUBLISHER
        and item_source is not None
        and item_source != editor.source
    ):
        raise Forbidden(f"source: this account sees only the items of {editor.source}")


def visible_source(editor: Editor, requested: str | None) -> str | None:
    """The source filter a listing must use: an agency publisher sees only its own."""
    if editor.role is not Role.AGENCY_PUBLISHER:
        return requested
    if requested is not None and requested != editor.source:
        raise Forbidden(f"source: this account sees only the items of {editor.source}")
    return editor.source


# --- incoming revisions ---------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStatus:
    """What the rules need to know of a review item."""

    revision: int
    state: ItemState
    published_revision: int | None  # the revision the public sees, None if nothing is public
    version: int = 1  # bumped by every change: the lock of an editor's screen


@dataclass(frozen=True)
class Outcome:
    state: ItemState
    published_revision: int | None
    decision: ReviewDecision | None  # the article.reviewed decision to emit, if any
    reviewer: str | None


def on_normalized(
    current: ItemStatus | None, revision: int, action: ArticleAction, policy: Policy
) -> Outcome | None:
    """What a normalised revision does to the item; None when it is not newer (ignore it)."""
    if current is not None and revision <= current.revision:
        return None
    previous_public = current.published_revision if current else None
    if action is ArticleAction.RETRACT:
        return Outcome(ItemState.RETRACTED, None, ReviewDecision.RETRACTED, PARTNER_REVIEWER)
    if policy is Policy.TRUSTED:
        return Outcome(
            ItemState.AUTO_PUBLISHED, revision, ReviewDecision.AUTO_PUBLISHED, TRUSTED_REVIEWER
        )
    # Pre-review: a new revision waits for an editor; an older approved one stays public.
    return Outcome(ItemState.PENDING, previous_public, None, None)


# --- editors' decisions ---------------------------------------------------------------------


def check_revision(item: ItemStatus, revision: int | None) -> None:
    """The revision the editor saw is the optimistic lock: acting on an older one is a 409."""
    if revision is not None and revision != item.revision:
        raise Conflict(
            f"revision: the item is at revision {item.revision}, you acted on revision "
            f"{revision}; reload it and review the newer revision",
            current_revision=item.revision,
            state=item.state,
        )


def check_version(item: ItemStatus, version: int | None) -> None:
    """The version the editor's screen showed: any change since (a colleague's decision or
    edit, a new revision) is a 409, so nobody acts on an item that moved on unknowingly."""
    if version is not None and version != item.version:
        raise Conflict(
            f"version: the item changed since you opened it (version {version}, now "
            f"{item.version}, state {item.state.value}); reload it before acting",
            current_revision=item.revision,
            state=item.state,
        )


def decide(
    item: ItemStatus, action: Action, revision: int | None, version: int | None = None
) -> Outcome:
    """The item's next state for an editor's action (the caller has checked the role)."""
    check_revision(item, revision)
    check_version(item, version)

    def conflict(reason: str) -> Conflict:
        return Conflict(reason, current_revision=item.revision, state=item.state)

    if item.state is ItemState.RETRACTED:
        raise conflict("state: the item is retracted; a new revision from its source reopens it")
    if action is Action.APPROVE:
        if item.state is ItemState.PUBLISHED:
            raise conflict(f"state: revision {item.revision} is already approved")
        return Outcome(ItemState.PUBLISHED, item.revision, ReviewDecision.APPROVED, None)
    if action is Action.REJECT:
        if item.state is not ItemState.PENDING:
            raise conflict(
                f"state: only a pending item can be rejected (it is {item.state.value}); "
                "retract a public one"
            )
        return Outcome(ItemState.REJECTED, item.published_revision, ReviewDecision.REJECTED, None)
    if action is Action.RETRACT:
        if item.state not in PUBLIC_STATES and item.published_revision is None:
            raise conflict("state: nothing of this item is public; reject it instead")
        return Outcome(ItemState.RETRACTED, None, ReviewDecision.RETRACTED, None)
    if action is Action.EDIT:
        # Editing a public revision republishes it at the same revision (an editorial update).
        decision = ReviewDecision.APPROVED if item.state in PUBLIC_STATES else None
        return Outcome(item.state, item.published_revision, decision, None)
    raise ValueError(f"not a decision: {action}")


EDITABLE_FIELDS = ("title", "summary", "section", "lead_image")
REVIEW_ACTIONS = frozenset({Action.APPROVE, Action.REJECT, Action.RETRACT})


def clean_edit(value: str) -> str:
    """Editors' text is stored like normalised text: NFC, no stray spaces."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def _lead_image(article: NormalizedArticle, url: str | None) -> MediaRef | None:
    """The article's image at ``url`` (its original URL); empty or None means no lead image."""
    if not url:
        return None
    for image in article.images:
        if image.original_url == url:
            return image
    if article.lead_image is not None and article.lead_image.original_url == url:
        return article.lead_image
    raise InvalidEdit("lead_image: not one of the article's images")


def apply_edits(
    article: NormalizedArticle, edits: dict[str, str | None]
) -> tuple[NormalizedArticle, dict[str, dict[str, Any]]]:
    """The edited article and the before/after of each field that really changed.

    ``lead_image`` is given as the original URL of one of the article's images ("" for none).
    """
    changes: dict[str, dict[str, Any]] = {}
    update: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name not in edits:
            continue
        raw = edits[name]
        if name == "lead_image":
            image = _lead_image(article, raw)
            was = article.lead_image.original_url if article.lead_image else None
            now = image.original_url if image else None
            if now != was:
                changes[name] = {"before": was, "after": now}
                update[name] = image
            continue
        after = clean_edit(raw) if raw is not None else None
        if name == "title" and not after:
            raise InvalidEdit("title: must not be empty")
        if name == "summary" and after is None:
            after = ""
        if name == "section" and after == "":
            after = None
        before = getattr(article, name)
        if after != before:
            changes[name] = {"before": before, "after": after}
            update[name] = after
    if not changes:
        return article, {}
    updated = article.model_copy(update=update)
    try:
        # Re-validate: model_copy does not, and the section code has a pattern.
        return NormalizedArticle.model_validate(updated.model_dump()), changes
    except ValidationError as exc:
        raise InvalidEdit(describe_validation_error(exc)) from exc


def reviewed_event(
    *,
    article_id: str,
    source: str,
    external_id: str,
    revision: int,
    decision: ReviewDecision,
    reviewer: str,
    reviewed_at: datetime,
    reason: str | None,
    article: NormalizedArticle | None,
) -> ArticleReviewedEvent:
    carries_article = decision in (ReviewDecision.APPROVED, ReviewDecision.AUTO_PUBLISHED)
    return ArticleReviewedEvent(
        producer=PRODUCER,
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=source,
            external_id=external_id,
            revision=revision,
            decision=decision,
            reviewer=reviewer,
            reviewed_at=reviewed_at,
            reason=reason,
            article=article if carries_article else None,
        ),
    )


# --- accounts -------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """Session tokens are random (256 bits), so a fast hash is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignInLimits:
    """Failed sign-ins allowed within ``window`` before the next attempt is refused unhashed.

    ``per_name_and_address`` counts one name tried from one address, so a stranger elsewhere
    cannot lock an editor out; ``per_address`` counts every name tried from one address
    (password spraying), 0 to disable it.
    """

    per_name_and_address: int
    per_address: int
    window: timedelta


def throttled_until(
    recent_failures: Sequence[datetime], *, limit: int, window: timedelta, now: datetime
) -> datetime | None:
    """When the sliding window lets the next attempt through, or None if it may go now.

    With ``limit`` failures inside the window, the next attempt waits until the ``limit``-th
    newest of them leaves the window. ``limit`` 0: no limit.
    """
    if limit <= 0:
        return None
    inside = sorted((t for t in recent_failures if t > now - window), reverse=True)
    if len(inside) < limit:
        return None
    return inside[limit - 1] + window


def sign_in_throttled_until(
    limits: SignInLimits,
    *,
    by_address: Sequence[datetime],
    by_name_and_address: Sequence[datetime],
    now: datetime,
) -> datetime | None:
    """The later of the two throttles' ends, or None when a sign-in may be checked now."""
    ends = [
        throttled_until(by_address, limit=limits.per_address, window=limits.window, now=now),
        throttled_until(
            by_name_and_address,
            limit=limits.per_name_and_address,
            window=limits.window,
            now=now,
        ),
    ]
    return max((end for end in ends if end is not None), default=None)


# --- the web desk ---------------------------------------------------------------------------


class DeskPage(StrEnum):
    QUEUE = "queue"
    DASHBOARD = "dashboard"
    AUDIT = "audit"
    SOURCES = "sources"
    USERS = "users"
    COMPOSE = "compose"


# Agency publishers see the queue and the dashboard, both narrowed to their own source.
PAGE_ROLES: dict[DeskPage, frozenset[Role]] = {
    DeskPage.QUEUE: frozenset(Role),
    DeskPage.DASHBOARD: frozenset(Role),
    DeskPage.AUDIT: frozenset({Role.ADMIN, Role.CHIEF_EDITOR}),
    DeskPage.SOURCES: frozenset({Role.ADMIN}),
    DeskPage.USERS: frozenset({Role.ADMIN}),
    # Agencies write for their own sub-site; editors may write for any agency.
    DeskPage.COMPOSE: frozenset(Role),
}


def may_see(editor: Editor, page: DeskPage) -> bool:
    return editor.role in PAGE_ROLES[page]


def authorize_page(editor: Editor, page: DeskPage) -> None:
    if not may_see(editor, page):
        raise Forbidden(f"role {editor.role.value} may not open the {page.value} page")


def may(editor: Editor, action: Action) -> bool:
    return action in PERMISSIONS[editor.role]


@dataclass(frozen=True)
class Claim:
    username: str
    claimed_at: datetime
    expires_at: datetime


def claim_by_other(claim: Claim | None, me: str, now: datetime) -> Claim | None:
    """A live claim of someone else on the item (shown as a warning), else None."""
    if claim is None or claim.username == me or claim.expires_at <= now:
        return None
    return claim


NEAR_DUPLICATE_FLAG = "near_duplicate"


def flags_of(
    quality: QualityReport | Mapping[str, Any] | None,
    *,
    section: str | None,
    duplicate_of: str | None = None,
) -> list[str]:
    """Codes that tell an editor where to look: the quality issues that need a person (a
    missing section no longer counts once one is set), and a near-duplicate."""
    if isinstance(quality, QualityReport):
        issues = [(i.code, i.needs_person) for i in quality.issues]
    elif quality:
        issues = [
            (i.get("code", ""), i.get("needs_person", True)) for i in quality.get("issues", [])
        ]
    else:
        issues = []
    flags: list[str] = []
    for code, needs_person in issues:
        if not needs_person or not code or code in flags:
            continue
        if code == "no_section" and section:
            continue
        flags.append(code)
    if duplicate_of and NEAR_DUPLICATE_FLAG not in flags:
        flags.append(NEAR_DUPLICATE_FLAG)
    return flags


def category_key(category: str) -> str:
    """Agencies' categories are matched ignoring case, spacing and Unicode form."""
    return " ".join(unicodedata.normalize("NFC", category).casefold().split())


def section_for_categories(
    categories: Sequence[str], mapping: Mapping[str, str]
) -> tuple[str, str] | None:
    """The portal section of the first category the agency's mapping knows, and that category."""
    for category in categories:
        section = mapping.get(category_key(category))
        if section:
            return section, category
    return None


def with_mapped_section(
    article: NormalizedArticle, mapping: Mapping[str, str]
) -> tuple[NormalizedArticle, dict[str, dict[str, Any]]]:
    """An article without a section gets one from its categories; returns the change made."""
    if article.section is not None or not mapping:
        return article, {}
    found = section_for_categories(article.categories, mapping)
    if found is None:
        return article, {}
    section, category = found
    mapped = article.model_copy(update={"section": section})
    return mapped, {"section": {"before": None, "after": section, "category": category}}


@dataclass(frozen=True)
class AgeBucket:
    code: str
    lower: timedelta
    upper: timedelta | None  # None: no upper bound


AGE_BUCKETS: tuple[AgeBucket, ...] = (
    AgeBucket("lt1h", timedelta(0), timedelta(hours=1)),
    AgeBucket("1h-6h", timedelta(hours=1), timedelta(hours=6)),
    AgeBucket("6h-24h", timedelta(hours=6), timedelta(days=1)),
    AgeBucket("1d-3d", timedelta(days=1), timedelta(days=3)),
    AgeBucket("3d-7d", timedelta(days=3), timedelta(days=7)),
    AgeBucket("gt7d", timedelta(days=7), None),
)
AGE_BUCKET_CODES = tuple(b.code for b in AGE_BUCKETS)


def age_bucket(code: str) -> AgeBucket:
    for bucket in AGE_BUCKETS:
        if bucket.code == code:
            return bucket
    raise ValueError(f"age: one of {', '.join(AGE_BUCKET_CODES)}")


def received_between(code: str, now: datetime) -> tuple[datetime | None, datetime]:
    """The received_at window of an age bucket: (oldest bound or None, newest bound)."""
    bucket = age_bucket(code)
    oldest = now - bucket.upper if bucket.upper is not None else None
    return oldest, now - bucket.lower
