"""Article events: ingested -> normalized -> reviewed -> published.

Every article event is keyed by ``article_id`` and carries ``revision`` so each stage can ignore an
older revision arriving after a newer one. Retraction travels the same path (``action="retract"``
or a retracted state), and every read model removes the item.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AnyHttpUrl, AwareDatetime, BeforeValidator, Field

from portal_contracts.envelope import Envelope, Payload

# Stable namespace for article ids: the same partner item always maps to the same portal id.
_ARTICLE_NAMESPACE = uuid.UUID("6f1d2c8e-1a52-4c35-9c1e-5a0f6b7d9e21")

SourceCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Code of the partner agency (source), e.g. 'tinh-ha-noi'.",
    ),
]
SectionCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Code of a portal section, e.g. 'tin-hoat-dong'.",
    ),
]
Revision = Annotated[int, Field(ge=1, description="Revision number; higher is newer.")]


def _without_nul(value: object) -> object:
    # PostgreSQL text and JSONB cannot hold NUL, and no text encoding uses it as a letter; the
    # payload exactly as received is archived (raw_object_key). The other characters XML
    # forbids stay for normalize to remove: C0 bytes are letters in TCVN3 and VISCII.
    if isinstance(value, str) and "\x00" in value:  # a search, not a copy, for the usual text
        return value.replace("\x00", "")
    return value


PartnerText = Annotated[str, BeforeValidator(_without_nul)]


def article_id_for(source: str, external_id: str) -> str:
    """The portal's id of a partner item: stable, so repeats and updates find the same article."""
    return str(uuid.uuid5(_ARTICLE_NAMESPACE, f"{source}/{external_id}"))


class ArticleAction(StrEnum):
    UPSERT = "upsert"
    RETRACT = "retract"


class Channel(StrEnum):
    REST = "rest"
    KAFKA = "kafka"
    FEED = "feed"
    DESK = "desk"  # written in the portal's desk by the agency (or an editor for it)


class ImageRef(Payload):
    url: AnyHttpUrl
    caption: PartnerText | None = Field(default=None, max_length=1000)


class ArticleContent(Payload):
    """The fields of an article as a partner sends them (before repair)."""

    title: PartnerText = Field(min_length=1, max_length=500)
    summary: PartnerText | None = Field(default=None, max_length=5000)
    body_html: PartnerText = Field(default="", max_length=2_000_000)
    author: PartnerText | None = Field(default=None, max_length=300)
    published_at: datetime | None = Field(
        default=None, description="Time at the source; naive times are in the source's zone."
    )
    canonical_url: AnyHttpUrl | None = None
    section: SectionCode | None = Field(default=None, description="Requested portal section.")
    categories: list[Annotated[PartnerText, Field(max_length=200)]] = Field(
        default_factory=list, max_length=50, description="The source's own categories."
    )
    images: list[ImageRef] = Field(default_factory=list, max_length=200)


class ByteRange(Payload):
    """A part of an object: ``length`` bytes from ``offset`` (an HTTP ``Range`` of bytes
    offset..offset+length-1)."""

    offset: int = Field(ge=0)
    length: int = Field(ge=0)


class ArticleIngested(Payload):
    article_id: str
    source: SourceCode
    external_id: str = Field(min_length=1, max_length=200)
    revision: Revision
    action: ArticleAction
    channel: Channel
    received_at: AwareDatetime
    content: ArticleContent | None = Field(default=None, description="Absent for a retraction.")
    raw_object_key: str | None = Field(
        default=None, description="Object-storage key of the payload exactly as received."
    )
    raw_byte_range: ByteRange | None = Field(
        default=None,
        description="Where the payload lies in that object when it holds several (a pack of "
        "one request group's or one Kafka batch's payloads); absent: the whole object.",
    )


class QualityIssue(Payload):
    code: str = Field(description="Machine-readable code, e.g. 'image_missing', 'no_section'.")
    message: str
    needs_person: bool = True


class QualityReport(Payload):
    score: float = Field(ge=0, le=1, description="1 is clean; lower means an editor should look.")
    repairs: list[QualityIssue] = Field(default_factory=list)
    issues: list[QualityIssue] = Field(default_factory=list)


class MediaRef(Payload):
    """An image the portal stores itself (object storage), with its renditions."""

    original_url: str = Field(description="Where the partner's article pointed.")
    object_key: str | None = None
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    renditions: dict[str, str] = Field(
        default_factory=dict, description="Width (px, as text) to object key."
    )


class NormalizedArticle(Payload):
    """An article after repair: safe HTML, NFC text, plain text and summary."""

    title: str
    summary: str
    body_html: str
    body_text: str
    author: str | None = None
    published_at: AwareDatetime | None = None
    canonical_url: str | None = None
    section: SectionCode | None = None
    categories: list[str] = Field(default_factory=list)
    images: list[MediaRef] = Field(default_factory=list)
    lead_image: MediaRef | None = None


class ArticleNormalized(Payload):
    article_id: str
    source: SourceCode
    external_id: str
    revision: Revision
    action: ArticleAction
    received_at: AwareDatetime
    article: NormalizedArticle | None = Field(default=None, description="Absent for a retraction.")
    quality: QualityReport | None = None
    duplicate_of: str | None = Field(default=None, description="Article id of a near-duplicate.")
    raw_object_key: str | None = None
    raw_byte_range: ByteRange | None = Field(
        default=None, description="The part of raw_object_key that is this payload (absent: all)."
    )


class ReviewDecision(StrEnum):
    APPROVED = "approved"
    AUTO_PUBLISHED = "auto_published"  # trusted source: published at once, reviewed after
    REJECTED = "rejected"
    RETRACTED = "retracted"


class ArticleReviewed(Payload):
    article_id: str
    source: SourceCode
    external_id: str
    revision: Revision
    decision: ReviewDecision
    reviewer: str = Field(description="Editor's user name, or 'policy:trusted' for auto-publish.")
    reviewed_at: AwareDatetime
    reason: str | None = Field(default=None, max_length=2000)
    article: NormalizedArticle | None = Field(
        default=None, description="The article as approved (editors' edits applied)."
    )


class PublishedState(StrEnum):
    PUBLISHED = "published"
    RETRACTED = "retracted"


class ArticlePublished(Payload):
    article_id: str
    source: SourceCode
    revision: Revision
    state: PublishedState
    slug: str
    url_path: str = Field(description="Public path of the article, e.g. '/bai-viet/<slug>'.")
    published_at: AwareDatetime
    updated_at: AwareDatetime
    article: NormalizedArticle | None = Field(default=None, description="Absent when retracted.")


class ArticleIngestedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "article.ingested"
    type: Literal["article.ingested"] = "article.ingested"
    data: ArticleIngested


class ArticleNormalizedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "article.normalized"
    type: Literal["article.normalized"] = "article.normalized"
    data: ArticleNormalized


class ArticleReviewedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "article.reviewed"
    type: Literal["article.reviewed"] = "article.reviewed"
    data: ArticleReviewed


class ArticlePublishedEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "article.published"
    type: Literal["article.published"] = "article.published"
    data: ArticlePublished
