"""The decisions of a poll, free of I/O: which child sitemaps to read, what a listing says
about vanished items, what to do with each listed item (in date order, within the page
budget), the article an item and its page make, the rows and raw records written, and what a
poll's outcome means for the connector's schedule.

``poller`` carries them out; ``domain`` holds the rules they are made of.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from portal_contracts.articles import ArticleContent, article_id_for
from portal_contracts.codec import describe_validation_error
from portal_ingest.pull import domain
from portal_ingest.pull.domain import Connector, ItemAction, ItemState, Listing, Outcome
from portal_ingest.pull.parse import ChildSitemap, FeedItem, PageContent
from portal_ingest.pull.report import PollReport, Work
from portal_ingest.pull.repository import ConnectorRow, ItemRow

EPOCH = datetime.min.replace(tzinfo=UTC)

# -- listings ---------------------------------------------------------------------------------


def pick_children(
    children: Sequence[ChildSitemap], since: datetime | None, limit: int
) -> list[ChildSitemap]:
    """Child sitemaps worth reading: changed since ``since`` (undated ones always), the most
    recently changed first, at most ``limit``."""
    picked = [
        c
        for c in children
        if since is None or c.lastmod is None or domain.as_utc(c.lastmod) >= since
    ]
    picked.sort(key=lambda c: domain.as_utc(c.lastmod) if c.lastmod else EPOCH, reverse=True)
    return picked[:limit]


def listing_of(items: Sequence[FeedItem], *, complete: bool, windowed: bool, zone: str) -> Listing:
    """What a listing says about the items that exist upstream: a feed (or a news sitemap)
    shows a window that starts at its oldest dated item; a urlset lists everything."""
    dates = [domain.as_utc(i.date, zone) for i in items if i.date]
    return Listing(
        complete=complete,
        window_start=min(dates) if windowed and dates else None,
        windowed=windowed,
    )


# -- the items of a listing -------------------------------------------------------------------


class Decision(StrEnum):
    OUT_OF_RANGE = "out_of_range"  # backfill: outside the date range, or undated
    OTHER_CONNECTOR = "other_connector"  # another feed of the source owns it
    UNCHANGED = "unchanged"
    RECHECK = "recheck"  # held: the category mapping may cover it now
    HISTORY = "history"  # a sitemap address older than the poll window: backfill takes it
    DEFERRED = "deferred"  # over this poll's page budget: the next poll continues
    INGEST = "ingest"  # fetch its page (if the connector does) and send it


@dataclass(frozen=True)
class Step:
    digest: str
    item: FeedItem
    current: ItemRow | None
    decision: Decision
    action: ItemAction | None = None  # the item's classification

    @property
    def seen(self) -> bool:
        """Whether the item counts as listed by this connector now."""
        return self.decision not in (
            Decision.OUT_OF_RANGE,
            Decision.OTHER_CONNECTOR,
            Decision.DEFERRED,
        )


@dataclass(frozen=True)
class Pass:
    """What a pass over listed items knows besides the items."""

    connector: Connector
    siblings: Sequence[int]  # the source's live connectors
    work: Work
    max_attempts: int
    zone: str  # the sources' time zone, for undated-offset dates
    first_poll: bool = False
    history_before: datetime | None = None  # sitemaps: older addresses are history


def unique_items(items: Sequence[FeedItem]) -> dict[str, FeedItem]:
    """The listed items by the hash of their key (the first of twins wins)."""
    by_hash: dict[str, FeedItem] = {}
    for item in items:
        by_hash.setdefault(domain.key_hash(item.key), item)
    return by_hash


def _decision(item: FeedItem, current: ItemRow | None, action: ItemAction, p: Pass) -> Decision:
    if action in (ItemAction.UNCHANGED, ItemAction.GIVE_UP):
        return Decision.UNCHANGED
    if action is ItemAction.RECHECK:
        return Decision.RECHECK
    if p.history_before is not None and p.work.range_utc is None:
        # A sitemap lists history: only recent addresses (or, after the first poll, new
        # undated ones) are polled; older ones are left to a backfill.
        if item.date is not None:
            if domain.as_utc(item.date, p.zone) < p.history_before:
                return Decision.HISTORY
        elif p.first_poll and current is None:
            return Decision.HISTORY
    return Decision.INGEST


def plan(items: Mapping[str, FeedItem], known: Mapping[str, ItemRow], p: Pass) -> list[Step]:
    """What to do with each listed item, oldest first; items that need a page fetch beyond
    the page budget are deferred to the next poll."""
    ordered = sorted(
        items.items(), key=lambda kv: domain.as_utc(kv[1].date, p.zone) if kv[1].date else EPOCH
    )
    budget = p.work.page_budget
    steps: list[Step] = []
    for digest, item in ordered:
        current = known.get(digest)
        if p.work.range_utc is not None and not domain.in_range(
            item.date, *p.work.range_utc, p.zone
        ):
            steps.append(Step(digest, item, current, Decision.OUT_OF_RANGE))
            continue
        action = domain.classify(
            None
            if current is None
            else domain.KnownItem(
                current.connector_id, current.fingerprint, current.state, current.attempts
            ),
            connector_id=p.connector.id,
            live_connectors=p.siblings,
            item_fingerprint=item.fingerprint(),
            max_attempts=p.max_attempts,
        )
        if action is ItemAction.OTHER_CONNECTOR:
            steps.append(Step(digest, item, current, Decision.OTHER_CONNECTOR, action))
            continue
        if p.work.range_utc is not None and current is not None and current.state is ItemState.SEEN:
            action = ItemAction.UPDATE  # history left to this backfill
        decision = _decision(item, current, action, p)
        if decision is Decision.INGEST and p.connector.fetches_pages and budget is not None:
            if budget <= 0:
                decision = Decision.DEFERRED
            else:
                budget -= 1
        steps.append(Step(digest, item, current, decision, action))
    return steps


# -- the article and what is recorded ---------------------------------------------------------


def article_content(item: FeedItem, page: PageContent | None) -> ArticleContent:
    """The article from the feed item and, when fetched, its page (the page's main content
    wins over a feed summary; the feed's title and dates win over the page's). Raises
    ``ValueError`` when no valid article can be made."""
    title = item.title or (page.title if page else None)
    if not title:
        raise ValueError("no title in the feed item or on its page")
    body = (page.body_html if page else None) or item.body_html or item.summary or ""
    summary = item.summary or (page.description if page else None)
    if summary and summary == body:
        summary = None
    images = list(item.images) + (list(page.images) if page else [])
    categories = list(item.categories) or (list(page.categories) if page else [])
    canonical = (page.canonical_url if page else None) or item.url
    data: dict[str, Any] = {
        "title": title[:500],
        "summary": summary[:5000] if summary else None,
        "body_html": body,
        "author": item.author or (page.author if page else None),
        "published_at": item.published_at
        or (page.published_at if page else None)
        or item.updated_at,
        "canonical_url": canonical,
        "categories": categories[:50],
        "images": [
            {"url": i.url, "caption": i.caption} for i in dict((i.url, i) for i in images).values()
        ][:200],
    }
    try:
        return ArticleContent.model_validate(data)
    except ValidationError as exc:
        last = exc
    # One bad optional field (an odd URL) must not lose the article: drop what fails.
    for optional in ("canonical_url", "images", "published_at", "author", "summary"):
        data[optional] = [] if optional == "images" else None
        try:
            return ArticleContent.model_validate(data)
        except ValidationError as exc:
            last = exc
    raise ValueError(f"the item is not a valid article: {describe_validation_error(last)}")


def connector_ref(connector: Connector) -> dict[str, Any]:
    return {"id": connector.id, "kind": connector.kind.value, "url": connector.url}


def item_raw(
    connector: Connector,
    document: dict[str, Any],
    item: FeedItem,
    page_doc: dict[str, Any] | None,
    fetched_at: datetime,
) -> bytes:
    """What is archived as the item's raw record: the listing, the item, and its page."""
    return domain.canonical_json(
        {
            "channel": "feed",
            "connector": connector_ref(connector),
            "document": document,
            "fetched_at": fetched_at.isoformat(),
            "item": item.raw,
            "page": page_doc,
        }
    )


def retraction_raw(connector: Connector, gone: ItemRow, polls: int, decided_at: datetime) -> bytes:
    """The raw record of a retraction the source's policy decided."""
    return domain.canonical_json(
        {
            "channel": "feed",
            "action": "retract",
            "connector": connector_ref(connector),
            "reason": f"missing from the source's listing in {polls} polls in a row "
            "(retract_missing policy)",
            "item_key": gone.item_key,
            "decided_at": decided_at.isoformat(),
        }
    )


def failed_attempts(current: ItemRow | None, item: FeedItem) -> int:
    """How many times in a row the item failed with the same content, this time included."""
    if current is not None and current.state is ItemState.FAILED:
        return current.attempts + 1 if current.fingerprint == item.fingerprint() else 1
    return 1


@dataclass(frozen=True)
class ItemRecord:
    """What a poll records of an item besides its state."""

    reason: str | None = None
    revision: int | None = None
    held_content: dict[str, Any] | None = None
    held_raw: bytes | None = None
    categories: list[str] | None = None
    section: str | None = None
    title: str | None = None
    attempts: int = 0


def item_values(
    connector: Connector,
    item: FeedItem,
    digest: str,
    state: ItemState,
    record: ItemRecord,
    *,
    current: ItemRow | None,
    now: datetime,
    zone: str,
) -> dict[str, Any]:
    """The item's row after this poll (what the item does not say is kept from ``current``)."""
    external_id = domain.external_id_for(item.key)
    title = record.title or item.title or (current.title if current else None) or ""
    categories = record.categories if record.categories is not None else item.categories
    published: datetime | None = current.published_at if current else None
    if item.date:
        published = domain.as_utc(item.date, zone)
    fingerprint = item.fingerprint() if item.raw or current is None else current.fingerprint
    revision = (
        record.revision if record.revision is not None else (current.revision if current else None)
    )
    return {
        "source": connector.source,
        "key_hash": digest,
        "item_key": item.key,
        "external_id": external_id,
        "article_id": article_id_for(connector.source, external_id),
        "connector_id": connector.id,
        "url": (item.url or "")[:2000] or (current.url if current else None),
        "title": title[:500] or None,
        "categories": [c[:200] for c in categories],
        "section": record.section,
        "fingerprint": fingerprint,
        "state": state.value,
        "reason": record.reason,
        "attempts": record.attempts,
        "revision": revision,
        "published_at": published,
        "held_content": record.held_content,
        "held_raw": record.held_raw,
        "last_seen_at": now,
        "missing_polls": 0,
        "missing_since": None,
    }


# -- after a poll -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    jitter: float
    max_backoff_s: int


def connector_after_poll(
    row: ConnectorRow, report: PollReport, now: datetime, backoff: Backoff, rng: random.Random
) -> dict[str, Any]:
    """The connector's columns after a poll: its outcome, the validators to send next time
    (only when nothing is left to do), and when to poll again (jittered; backing off after
    failures)."""
    values: dict[str, Any] = {
        "last_fetch_at": now,
        "last_outcome": report.outcome.value,
        "last_http_status": report.http_status,
        "last_warnings": report.warnings,
    }
    if report.outcome is not Outcome.ERROR:
        keep = report.complete_work
        values.update(
            consecutive_failures=0,
            last_success_at=now,
            first_polled_at=row.first_polled_at or now,
            etag=report.etag if keep else None,
            last_modified=report.last_modified if keep else None,
            body_hash=report.body_hash if keep else None,
            next_fetch_at=domain.next_poll_at(now, row.interval_s, backoff.jitter, rng),
        )
        return values
    failures = row.consecutive_failures + 1
    values.update(
        consecutive_failures=failures,
        last_error_kind=report.error_kind.value if report.error_kind else None,
        last_error=report.message,
        last_error_at=now,
        next_fetch_at=domain.retry_at(
            now, row.interval_s, failures, backoff.max_backoff_s, backoff.jitter, rng
        ),
    )
    return values


def fetch_log_values(row: ConnectorRow, report: PollReport) -> dict[str, Any]:
    return {
        "source": row.source,
        "connector_id": row.id,
        "url": row.url,
        "trigger": report.trigger,
        "started_at": report.started_at,
        "duration_ms": report.duration_ms,
        "outcome": report.outcome.value,
        "error_kind": report.error_kind.value if report.error_kind else None,
        "http_status": report.http_status,
        "message": report.message,
        "warnings": report.warnings,
        "counts": report.counts.as_dict(),
    }
