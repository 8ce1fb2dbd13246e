"""Who may write what in the desk, and what a draft becomes: pure rules, no I/O.

* An agency account writes only for its own agency, in the sections granted to it; editors
  (and chief editors, admins) may write for any agency, in that agency's sections. Every use
  case asks these rules on every request: a form that offers only the allowed choices is a
  convenience, never the check.
* A draft's fields are bounded as a partner article's are; it becomes an ``ArticleContent``
  for ingest (the lead image first in the image list, as partners send it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from portal_contracts.articles import ArticleContent, ImageRef
from portal_contracts.codec import describe_validation_error
from portal_moderation.domain import Action, Editor, Forbidden, Role, authorize


class DraftState(StrEnum):
    DRAFT = "draft"  # never submitted
    SUBMITTED = "submitted"  # a revision went to ingest; later edits make the next one
    RETRACTED = "retracted"


class InvalidDraft(ValueError):
    """A field that cannot be saved; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


LIMITS = {
    "title": 500,
    "summary": 5000,
    "author": 300,
    "body_html": 2_000_000,
    "caption": 1000,
    "comment": 2000,
}


@dataclass(frozen=True)
class DraftFields:
    """What the compose form edits."""

    title: str
    summary: str | None = None
    section: str | None = None
    author: str | None = None
    body_html: str = ""
    lead_image_url: str | None = None
    lead_caption: str | None = None


def writing_source(editor: Editor, requested: str | None) -> str:
    """The agency ``editor`` writes for: an agency account's own (asking for another is
    Forbidden); an editor must name one."""
    if editor.role is Role.AGENCY_PUBLISHER:
        if requested is not None and requested != editor.source:
            raise Forbidden(f"source: this account writes only for {editor.source}")
        assert editor.source is not None
        return editor.source
    if not requested:
        raise InvalidDraft("source", "choose the agency to write for")
    return requested


def check_draft_access(editor: Editor, draft_source: str) -> None:
    """An agency account opens, edits, submits and retracts only its own agency's drafts."""
    if editor.role is Role.AGENCY_PUBLISHER and draft_source != editor.source:
        raise Forbidden(f"source: this draft belongs to {draft_source}")


def check_section(section: str | None, allowed: tuple[str, ...], source: str) -> None:
    """The section must be one the agency is granted (none: the editors assign one)."""
    if section is not None and section not in allowed:
        raise Forbidden(f"section: '{section}' is not granted to {source}")


def clean_fields(fields: DraftFields) -> DraftFields:
    """Trimmed, with empty optional fields as None; ``InvalidDraft`` for what cannot be kept."""

    def opt(value: str | None, name: str) -> str | None:
        value = (value or "").strip()
        if len(value) > LIMITS[name]:
            raise InvalidDraft(name, f"longer than {LIMITS[name]} characters")
        return value or None

    title = (fields.title or "").strip()
    if not title:
        raise InvalidDraft("title", "required")
    if len(title) > LIMITS["title"]:
        raise InvalidDraft("title", f"longer than {LIMITS['title']} characters")
    body = (fields.body_html or "").strip()
    if len(body) > LIMITS["body_html"]:
        raise InvalidDraft("body_html", f"longer than {LIMITS['body_html']} characters")
    return DraftFields(
        title=title,
        summary=opt(fields.summary, "summary"),
        section=(fields.section or "").strip() or None,
        author=opt(fields.author, "author"),
        body_html=body,
        lead_image_url=(fields.lead_image_url or "").strip() or None,
        lead_caption=opt(fields.lead_caption, "caption"),
    )


def article_content(fields: DraftFields) -> ArticleContent:
    """The article ingest receives, validated as a partner's is."""
    images = []
    if fields.lead_image_url:
        images.append({"url": fields.lead_image_url, "caption": fields.lead_caption})
    try:
        return ArticleContent(
            title=fields.title,
            summary=fields.summary,
            body_html=fields.body_html,
            author=fields.author,
            section=fields.section,
            images=[ImageRef.model_validate(i) for i in images],
        )
    except ValidationError as exc:
        raise InvalidDraft("article", describe_validation_error(exc)) from exc


def new_draft_id() -> str:
    return str(uuid.uuid4())


def external_id_for(draft_id: str) -> str:
    """The agency's own id of the article in ingest: one per draft, for all its revisions."""
    return f"desk-{draft_id}"


def check_send_back(editor: Editor, source: str, review_state: str | None, comment: str) -> str:
    """An editor (one who may reject) sends a rejected article back to its agency with a
    comment; the comment, trimmed."""
    authorize(editor, Action.REJECT, source)
    if review_state != "rejected":
        raise InvalidDraft("state", "only a rejected article is sent back to its agency")
    comment = comment.strip()
    if not comment or len(comment) > LIMITS["comment"]:
        raise InvalidDraft("comment", f"required, at most {LIMITS['comment']} characters")
    return comment


def may_submit(state: DraftState) -> bool:
    return state is not DraftState.RETRACTED


def may_retract(state: DraftState) -> bool:
    return state is DraftState.SUBMITTED
