"""What ingest's followers of the pipeline read of an article event: a few fields, not the article.

The partner status and journey consumers see every article event of every stage (each holding
the article's text, several kilobytes) and need only who, which revision and what happened.
Validating the whole event (its content's every field) was most of their cost, so they decode
this view instead: the envelope's identity and the payload's few fields, the rest skipped
unread. The producers validated the events against their contract before storing them.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from portal_contracts.articles import ArticleAction, Channel, PublishedState, ReviewDecision
from portal_contracts.codec import MODELS, DecodeError, describe_validation_error
from portal_contracts.envelope import Envelope
from portal_runtime.batch import Record


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class QualityView(_View):
    score: float
    repairs: list[Any] = []
    issues: list[Any] = []


class ArticleDataView(_View):
    """The payload fields of article.ingested, .normalized, .reviewed and .published that the
    followers use (each event has those of its own type)."""

    article_id: str
    source: str
    revision: int
    action: ArticleAction | None = None  # ingested, normalized
    channel: Channel | None = None  # ingested
    received_at: AwareDatetime | None = None  # ingested
    quality: QualityView | None = None  # normalized
    duplicate_of: str | None = None  # normalized
    decision: ReviewDecision | None = None  # reviewed
    reviewer: str | None = None  # reviewed
    reason: str | None = None  # reviewed
    reviewed_at: AwareDatetime | None = None  # reviewed
    state: PublishedState | None = None  # published
    url_path: str | None = None  # published
    updated_at: AwareDatetime | None = None  # published


class ArticleEventView(Envelope):
    """The envelope as it is (an ``Envelope``: the consumer's inbox and spans read it) with
    the payload's view."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data: ArticleDataView

    @classmethod
    def of(cls, event: Envelope) -> ArticleEventView:
        """The view of an event in hand (as its bytes would be decoded)."""
        return cls.model_validate_json(event.model_dump_json())


def decode_view(record: Record) -> ArticleEventView:
    """The view of an article event's bytes; raises ``DecodeError`` (a dead letter) for bytes
    that are no such event or an event of another topic."""
    try:
        view = ArticleEventView.model_validate_json(record.value or b"")
    except ValidationError as exc:
        raise DecodeError(describe_validation_error(exc), "validation") from exc
    if view.type != record.topic or (view.type, view.schema_version) not in MODELS:
        raise DecodeError(
            f"a {view.type} event (schema version {view.schema_version}) on {record.topic}",
            "schema",
        )
    return view
