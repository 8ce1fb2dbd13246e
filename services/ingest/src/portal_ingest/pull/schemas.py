"""Request and response models of the pull admin API (also the shape of integration health
the editors' dashboard reads over HTTP)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from portal_contracts.articles import SectionCode
from portal_ingest.pull.domain import ConnectorKind, ItemState, Outcome, SourceState

CategoryName = Annotated[str, Field(min_length=1, max_length=200)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    return value


# -- configuration ----------------------------------------------------------------------------


class ConnectorIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: ConnectorKind = Field(description="rss, atom, jsonfeed, sitemap or news-sitemap.")
    url: str = Field(min_length=8, max_length=2000, description="The feed or sitemap address.")
    categories: dict[CategoryName, SectionCode] = Field(
        default_factory=dict,
        max_length=500,
        description="The source's category names (any case, spacing, tone placement) mapped "
        "to portal sections; on top of the source-wide mapping.",
    )
    section: SectionCode | None = Field(
        default=None,
        description="This feed's own section, for items whose categories map to nothing. "
        "Without one such items are held (listed, never dropped).",
    )
    interval_s: int = Field(default=300, le=86400, description="Seconds between polls.")
    fetch_full_page: bool = Field(
        default=False,
        description="Fetch each item's page and take its main content (summary-only feeds). "
        "Sitemaps always do.",
    )
    retract_missing: bool = Field(
        default=False,
        description="Retract an item that disappears upstream (not just scrolls out of the "
        "feed). Off: vanished items stay published.",
    )
    enabled: bool = True
    lookback_days: int = Field(
        default=2,
        ge=1,
        le=31,
        description="Sitemaps: addresses dated older than this are history, left to a backfill.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class FeedsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: dict[CategoryName, SectionCode] = Field(
        default_factory=dict,
        max_length=1000,
        description="Source-wide mapping of the agency's category names to portal sections.",
    )
    connectors: list[ConnectorIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _unique(self) -> FeedsIn:
        seen: set[tuple[str, str]] = set()
        for index, c in enumerate(self.connectors):
            key = (c.kind.value, c.url)
            if key in seen:
                raise ValueError(f"connectors[{index}]: {c.kind.value} {c.url} is listed twice")
            seen.add(key)
        return self


class ConnectorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: ConnectorKind
    url: str
    categories: dict[str, str]
    section: str | None
    interval_s: int
    fetch_full_page: bool
    retract_missing: bool
    enabled: bool
    lookback_days: int
    next_fetch_at: datetime
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    last_outcome: Outcome | None


class FeedsOut(BaseModel):
    source: str
    categories: dict[str, str]
    paused: bool
    connectors: list[ConnectorOut]
    released_held_items: int = Field(
        default=0, description="Held items this change of mapping sent to the pipeline."
    )


# -- operations -------------------------------------------------------------------------------


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str | None = Field(default=None, max_length=1000)


class PullStateOut(BaseModel):
    source: str
    paused: bool
    paused_at: datetime | None
    paused_reason: str | None


class PollOut(BaseModel):
    connector_id: int
    url: str
    outcome: Literal["ok", "not_modified", "unchanged", "error", "busy", "running"]
    error_kind: str | None = None
    http_status: int | None = None
    message: str | None = None
    warnings: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(
        default_factory=dict,
        description="new, updated, unchanged, held, failed, refused, retracted, restored, "
        "released, history, deferred, other_connector (zeros left out).",
    )
    duration_ms: int | None = None


class FetchNowOut(BaseModel):
    source: str
    finished: bool = Field(description="False: some polls still run (see the source's health).")
    polls: list[PollOut]


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date_from: date = Field(alias="from", description="First local date (Asia/Ho_Chi_Minh).")
    date_to: date = Field(alias="to", description="Last local date, inclusive.")
    connector_id: int | None = Field(
        default=None, description="One sitemap connector; default: every sitemap of the source."
    )

    @model_validator(mode="after")
    def _ordered(self) -> BackfillIn:
        if self.date_to < self.date_from:
            raise ValueError("to: must not be before from")
        if (self.date_to - self.date_from).days > 366:
            raise ValueError("to: a backfill covers at most 366 days; split it")
        return self


class BackfillOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    connector_id: int | None
    date_from: date
    date_to: date
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]
    last_error: str | None


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str
    article_id: str
    connector_id: int | None
    url: str | None
    title: str | None
    categories: list[str]
    section: str | None
    state: ItemState
    reason: str | None
    attempts: int
    revision: int | None
    published_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    missing_since: datetime | None
    updated_at: datetime


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    section: SectionCode = Field(description="The portal section to send the held item to.")


# -- integration health -----------------------------------------------------------------------


class BreakerOut(BaseModel):
    state: Literal["closed", "open", "half_open"]
    consecutive_failures: int
    open_until: datetime | None


class ProblemOut(BaseModel):
    at: datetime
    connector_id: int | None
    url: str
    kind: str | None = Field(description="timeout, connection, http_status, malformed, ...")
    http_status: int | None
    message: str | None


class WarningOut(BaseModel):
    connector_id: int
    url: str
    message: str = Field(description="e.g. a wrong declared encoding, recovered broken XML.")


class ConnectorHealthOut(BaseModel):
    id: int
    kind: ConnectorKind
    url: str
    enabled: bool
    interval_s: int
    next_fetch_at: datetime
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    last_outcome: Outcome | None
    last_http_status: int | None
    consecutive_failures: int
    conditional: bool = Field(description="The site answers with ETag or Last-Modified.")
    last_error: ProblemOut | None
    warnings: list[str]


class DayCount(BaseModel):
    date: date
    count: int


class SectionHealthOut(BaseModel):
    section: str | None = Field(description="null: items without a section yet.")
    standard: bool = Field(description="One of the standard sections of every sub-site.")
    total: int
    days: list[DayCount]


class ItemProblemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str | None
    title: str | None
    state: ItemState
    reason: str | None
    attempts: int
    updated_at: datetime


class SourceHealthSummaryOut(BaseModel):
    source: str
    name: str
    kind: str
    active: bool
    state: SourceState
    mode: Literal["pull", "push"] = Field(description="pull: feeds configured; push: none.")
    paused: bool
    breaker: BreakerOut
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    last_new_item_at: datetime | None = Field(description="Newest first arrival, any channel.")
    last_item_at: datetime | None = Field(description="Newest revision, any channel.")
    window_hours: int
    fetches: int = Field(description="Polls in the window.")
    errors: int = Field(description="Failed polls in the window.")
    error_rate: float | None = Field(description="errors / fetches; null without polls.")
    last_error: ProblemOut | None
    warnings: int = Field(description="Warnings of the connectors' last polls.")
    held_items: int
    failed_items: int
    partner_errors: int = Field(description="Refused Kafka messages in the window.")
    items_in_days: int = Field(description="Items first arrived in the last `days` days.")
    standard_sections_without_items: list[str]


class SourceHealthOut(SourceHealthSummaryOut):
    paused_at: datetime | None
    paused_reason: str | None
    days: int
    items: dict[str, int] = Field(description="Feed items by state.")
    recent_errors: list[ProblemOut]
    warning_list: list[WarningOut]
    item_problems: list[ItemProblemOut] = Field(
        description="Latest failed, refused or held feed items, with the reason."
    )
    connectors: list[ConnectorHealthOut]
    sections: list[SectionHealthOut]


class HealthTotals(BaseModel):
    sources: int
    pull_sources: int
    by_state: dict[str, int]
    held_items: int
    failed_items: int


class HealthOverviewOut(BaseModel):
    generated_at: datetime
    window_hours: int
    days: int
    totals: HealthTotals
    sources: list[SourceHealthSummaryOut]
