"""The request and response models of moderation's JSON API (admin, sign-in, review queue)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from portal_contracts.articles import NormalizedArticle, QualityReport, SectionCode, SourceCode
from portal_moderation.domain import Action, ItemState, Policy, Role
from portal_moderation.passwords import MAX_LENGTH, MIN_LENGTH
from portal_runtime.problems import NulFree


class Model(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceIn(Model):
    name: str = Field(min_length=1, max_length=300)
    kind: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="central-party-body, socio-political, ministry, province, ...",
    )
    policy: Policy = Field(
        description="pre-review: published after an editor approves; trusted: at once."
    )
    categories: dict[Annotated[str, Field(min_length=1, max_length=200)], SectionCode] | None = (
        Field(
            default=None,
            max_length=500,
            description="The agency's own category names -> portal section codes, applied to "
            "an item that names no section. Omit it to keep the mapping as it is.",
        )
    )


class SourceOut(BaseModel):
    code: str
    name: str
    kind: str
    policy: Policy
    categories: dict[str, str] = Field(description="Case-folded category -> section code.")
    updated_at: datetime


class UserIn(Model):
    password: SecretStr | None = Field(
        default=None,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description="Required to create an account; give it to change the password.",
    )
    role: Role
    display_name: str = Field(min_length=1, max_length=200)
    source: SourceCode | None = Field(
        default=None, description="The agency of an agency_publisher (and only then)."
    )
    active: bool = True


class UserOut(BaseModel):
    username: str
    role: Role
    display_name: str
    source: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class Credentials(Model):
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=MAX_LENGTH)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_at: datetime
    username: str
    role: Role
    source: str | None


class Me(BaseModel):
    username: str
    role: Role
    source: str | None
    may: list[Action] = Field(description="What this account may do on items.")


class ItemSummary(BaseModel):
    article_id: str
    source: str
    external_id: str
    revision: int
    state: ItemState
    title: str | None
    section: str | None
    quality_score: float | None
    flags: list[str] = Field(description="Codes of the quality issues that need a person.")
    published_revision: int | None = Field(description="The revision the public sees, if any.")
    version: int = Field(
        description="Bumped by every change to the item (a lock for screens that show it)."
    )
    duplicate_of: str | None = Field(description="A near-duplicate found when it arrived.")
    received_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    updated_at: datetime


class ItemDetail(ItemSummary):
    article: NormalizedArticle | None
    quality: QualityReport | None


class ItemPage(BaseModel):
    items: list[ItemSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ApproveIn(Model):
    revision: int = Field(ge=1, description="The revision you reviewed (optimistic lock).")


class RejectIn(Model):
    revision: int = Field(ge=1, description="The revision you reviewed (optimistic lock).")
    reason: str = Field(min_length=1, max_length=2000)


class EditIn(Model):
    revision: int = Field(ge=1, description="The revision you edited (optimistic lock).")
    title: str | None = Field(default=None, min_length=1, max_length=500)
    summary: str | None = Field(default=None, max_length=5000)
    section: SectionCode | None = None
    lead_image: str | None = Field(
        default=None,
        max_length=2000,
        description="Original URL of one of the article's images; empty for no lead image.",
    )


class RetractIn(Model):
    reason: str = Field(min_length=1, max_length=2000)
    revision: int | None = Field(
        default=None, ge=1, description="Optional optimistic lock on the revision you saw."
    )


class HistoryEntry(BaseModel):
    action: str
    revision: int
    actor: str
    actor_role: str | None
    reason: str | None
    changes: dict[str, Any] | None
    event_id: str | None
    decided_at: datetime
