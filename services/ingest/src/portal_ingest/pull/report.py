"""What one poll (or one backfill pass) did: its outcome, error, warnings and counts, recorded
for the source's health; and what a pass over listed items is for (``Work``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from portal_ingest.pull.domain import ErrorKind, Outcome

MAX_WARNINGS = 20


@dataclass
class Counts:
    new: int = 0  # first revision sent to the pipeline
    updated: int = 0  # a new revision of a known item
    unchanged: int = 0
    held: int = 0
    failed: int = 0
    refused: int = 0
    retracted: int = 0
    restored: int = 0
    released: int = 0
    history: int = 0  # sitemap addresses older than the poll window (backfill takes them)
    deferred: int = 0  # over this poll's page budget: the next poll continues
    other_connector: int = 0
    out_of_range: int = 0  # backfill: outside the date range, or undated

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if v}

    def add(self, other: Counts) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


@dataclass
class PollReport:
    connector_id: int
    source: str
    url: str
    trigger: str
    started_at: datetime
    outcome: Outcome = Outcome.OK
    error_kind: ErrorKind | None = None
    http_status: int | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    duration_ms: int = 0
    # Validators to keep for the next conditional request (only when nothing is left to do).
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    complete_work: bool = True

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS and message not in self.warnings:
            self.warnings.append(message[:500])

    def fail(self, kind: ErrorKind, message: str, http_status: int | None = None) -> PollReport:
        self.outcome = Outcome.ERROR
        self.error_kind = kind
        self.message = message[:2000]
        self.http_status = http_status
        return self

    def keep_validators(
        self, etag: str | None, last_modified: str | None, body_hash: str | None
    ) -> None:
        self.etag, self.last_modified, self.body_hash = etag, last_modified, body_hash


@dataclass(frozen=True)
class Work:
    """What a pass over listed items is for: a regular poll, or a backfill of a date range."""

    trigger: str
    range_utc: tuple[datetime, datetime] | None = None  # backfill
    page_budget: int | None = None
