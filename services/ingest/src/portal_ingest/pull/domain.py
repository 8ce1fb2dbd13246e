"""The rules of pull integration, free of I/O: connectors, item identity and changes, category
mapping, schedule with jitter, backoff, the circuit breaker, retraction of vanished items and
the health of a source. Unit-tested without infrastructure.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from portal_text import normalize_tone_placement

# -- connectors -------------------------------------------------------------------------------


class ConnectorKind(StrEnum):
    RSS = "rss"
    ATOM = "atom"
    JSONFEED = "jsonfeed"
    SITEMAP = "sitemap"
    NEWS_SITEMAP = "news-sitemap"

    @property
    def is_sitemap(self) -> bool:
        return self in (ConnectorKind.SITEMAP, ConnectorKind.NEWS_SITEMAP)


@dataclass(frozen=True)
class Connector:
    """One configured feed or sitemap of a source, as the poller needs it."""

    id: int
    source: str
    kind: ConnectorKind
    url: str
    categories: Mapping[str, str]  # merged source + connector mapping, keyed by category_key
    section: str | None  # the feed's own section: items whose categories map to nothing
    interval_s: int
    fetch_full_page: bool
    retract_missing: bool
    lookback_days: int

    @property
    def fetches_pages(self) -> bool:
        # A sitemap lists addresses only: the article is always on its page.
        return self.fetch_full_page or self.kind.is_sitemap


# -- item identity ----------------------------------------------------------------------------

_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|zarsrc|mc_cid|mc_eid|_ga)$", re.I)
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:/-]+$")
EXTERNAL_ID_PREFIX = "feed/"
MAX_KEY_LENGTH = 2000


def canonical_url(url: str) -> str:
    """One form per article address: lower-case scheme and host, no default port, no fragment,
    no tracking parameters. Path and the remaining query stay as they are (servers may care)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k)
        ],
        doseq=True,
    )
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def item_key(guid: str | None, link: str | None) -> str | None:
    """An item is known by its guid (opaque, as the source gives it), else its canonical URL."""
    if guid and guid.strip():
        return guid.strip()[:MAX_KEY_LENGTH]
    if link and link.strip():
        return canonical_url(link)[:MAX_KEY_LENGTH]
    return None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def external_id_for(key: str) -> str:
    """The partner-article id of a feed item: readable when the key allows, else its hash.

    The ``feed/`` prefix keeps pulled items apart from ids a partner pushes itself.
    """
    readable = EXTERNAL_ID_PREFIX + key
    if len(readable) <= 200 and _EXTERNAL_ID.match(readable) and "/../" not in readable:
        return readable
    return f"{EXTERNAL_ID_PREFIX}sha256/{key_hash(key)[:48]}"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(fields: Mapping[str, Any]) -> str:
    """SHA-256 of an item's fields as the source gave them: equal means nothing changed."""
    return hashlib.sha256(canonical_json(dict(fields))).hexdigest()


# -- category mapping -------------------------------------------------------------------------


def category_key(name: str) -> str:
    """Categories match whatever the case, spacing, Unicode form or tone-mark placement."""
    text = unicodedata.normalize("NFC", name)
    text = normalize_tone_placement(text)
    return " ".join(text.casefold().split())


def merged_mapping(
    source_map: Mapping[str, str], connector_map: Mapping[str, str]
) -> dict[str, str]:
    """The source's mapping with the connector's on top, keyed by ``category_key``."""
    merged = {category_key(k): v for k, v in source_map.items()}
    merged.update({category_key(k): v for k, v in connector_map.items()})
    return merged


@dataclass(frozen=True)
class Placement:
    section: str | None
    held_reason: str | None = None
    matched_category: str | None = None

    @property
    def held(self) -> bool:
        return self.section is None


def place(
    categories: Sequence[str], mapping: Mapping[str, str], default_section: str | None
) -> Placement:
    """The portal section of an item: its first mapped category, else the feed's section;
    with neither the item is held (shown to operators, never dropped)."""
    for name in categories:
        section = mapping.get(category_key(name))
        if section:
            return Placement(section, matched_category=name)
    if default_section:
        return Placement(default_section)
    if categories:
        shown = ", ".join(f"'{c}'" for c in categories[:10])
        return Placement(None, f"no section is mapped for the categories {shown}")
    return Placement(None, "the item has no category and the feed has no default section")


# -- what to do with an item ------------------------------------------------------------------


class ItemState(StrEnum):
    INGESTED = "ingested"  # sent to the pipeline (any revision)
    HELD = "held"  # waiting for a category mapping or an operator
    FAILED = "failed"  # its page could not be fetched or extracted (retried while listed)
    REFUSED = "refused"  # the pipeline refused it (e.g. a section no longer allowed)
    RETRACTED = "retracted"  # vanished upstream and retracted by the source's policy
    SEEN = "seen"  # a sitemap address from before the first poll (history: backfill it)
    RELEASED = "released"  # held, then sent by an operator to a section


@dataclass(frozen=True)
class KnownItem:
    connector_id: int | None
    fingerprint: str
    state: ItemState
    attempts: int


class ItemAction(StrEnum):
    NEW = "new"
    UPDATE = "update"  # changed upstream: a new revision if the content differs
    RETRY = "retry"  # failed before: try again
    RESTORE = "restore"  # retracted as vanished, and back
    RECHECK = "recheck"  # held: the mapping may cover it now
    UNCHANGED = "unchanged"
    OTHER_CONNECTOR = "other_connector"  # another feed of the source owns it
    GIVE_UP = "give_up"  # failed too often with the same content


def classify(
    known: KnownItem | None,
    *,
    connector_id: int,
    live_connectors: Iterable[int],
    item_fingerprint: str,
    max_attempts: int,
) -> ItemAction:
    if known is None:
        return ItemAction.NEW
    owner = known.connector_id
    if owner is not None and owner != connector_id and owner in set(live_connectors):
        return ItemAction.OTHER_CONNECTOR
    changed = known.fingerprint != item_fingerprint
    if known.state is ItemState.RETRACTED:
        return ItemAction.RESTORE
    if known.state is ItemState.FAILED:
        if changed:
            return ItemAction.UPDATE
        return ItemAction.RETRY if known.attempts < max_attempts else ItemAction.GIVE_UP
    if known.state is ItemState.HELD:
        return ItemAction.UPDATE if changed else ItemAction.RECHECK
    if known.state is ItemState.SEEN:
        return ItemAction.UPDATE if changed else ItemAction.UNCHANGED
    return ItemAction.UPDATE if changed else ItemAction.UNCHANGED


# -- vanished items ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What one successful poll says about the items that exist upstream."""

    complete: bool  # the whole list was read (no recovered parse errors, no truncated index)
    window_start: datetime | None  # oldest dated item listed (feeds show a window)
    windowed: bool  # True for feeds and news sitemaps (items rotate out); False for a urlset


def vanished(listing: Listing, published_at: datetime | None) -> bool:
    """Whether a known item missing from ``listing`` was removed upstream (not rotated out).

    A feed shows its newest items; an item older than the oldest one listed just scrolled
    away. Only an item newer than that was taken down. Undated items are never judged.
    """
    if not listing.complete:
        return False
    if not listing.windowed:
        return True
    if published_at is None or listing.window_start is None:
        return False
    return as_utc(published_at) > as_utc(listing.window_start)


def should_retract(retract_missing: bool, missing_polls: int, threshold: int) -> bool:
    return retract_missing and missing_polls >= threshold


# -- schedule, backoff, circuit breaker -------------------------------------------------------


def jittered(seconds: float, jitter: float, rng: random.Random) -> float:
    return seconds * (1 + rng.uniform(-jitter, jitter))


def next_poll_at(now: datetime, interval_s: int, jitter: float, rng: random.Random) -> datetime:
    return now + timedelta(seconds=jittered(interval_s, jitter, rng))


def first_poll_at(now: datetime, interval_s: int, rng: random.Random) -> datetime:
    """New connectors start spread over the first minute (or interval), not all at once."""
    return now + timedelta(seconds=rng.uniform(0, min(interval_s, 60)))


def retry_at(
    now: datetime,
    interval_s: int,
    consecutive_failures: int,
    max_backoff_s: int,
    jitter: float,
    rng: random.Random,
) -> datetime:
    """After the n-th failure in a row, wait interval * 2^(n-1) (capped), with jitter."""
    exponent = max(0, min(consecutive_failures - 1, 20))
    delay = min(float(max_backoff_s), float(interval_s) * 2**exponent)
    return now + timedelta(seconds=jittered(delay, jitter, rng))


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # failed polls in a row (any connector of the source)
    opened: int = 0  # times opened in a row without a success between
    open_until: datetime | None = None

    def allows(self, now: datetime) -> bool:
        return self.open_until is None or now >= self.open_until


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int
    cooldown_s: int
    max_cooldown_s: int


def breaker_after(
    breaker: Breaker, *, success: bool, counts: bool, now: datetime, policy: BreakerPolicy
) -> Breaker:
    """The breaker after one poll. ``counts``: the failure is the site's (unreachable, slow,
    5xx, 429), not ours or the configuration's, which never open the breaker."""
    if success:
        return Breaker()
    if not counts:
        return breaker
    failures = breaker.failures + 1
    if breaker.state is BreakerState.HALF_OPEN or failures >= policy.threshold:
        opened = breaker.opened + 1
        cooldown = min(policy.max_cooldown_s, policy.cooldown_s * 2 ** min(opened - 1, 20))
        return Breaker(BreakerState.OPEN, failures, opened, now + timedelta(seconds=cooldown))
    return replace(breaker, failures=failures)


# -- poll outcomes and errors -----------------------------------------------------------------


class Outcome(StrEnum):
    OK = "ok"  # fetched and processed
    NOT_MODIFIED = "not_modified"  # 304 to a conditional request
    UNCHANGED = "unchanged"  # the same bytes as last time
    ERROR = "error"


class ErrorKind(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    ADDRESS_REFUSED = "address_refused"
    ROBOTS = "robots_disallowed"
    REDIRECTS = "too_many_redirects"
    CONTENT_TYPE = "content_type"
    MALFORMED = "malformed"
    NOT_A_FEED = "not_a_feed"
    STORAGE = "storage_unavailable"
    INTERNAL = "internal"


# The site's fault: counts towards the circuit breaker.
SITE_FAILURES = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.HTTP_STATUS})


def counts_for_breaker(kind: ErrorKind | None, http_status: int | None) -> bool:
    if kind not in SITE_FAILURES:
        return False
    if kind is ErrorKind.HTTP_STATUS:
        return http_status is not None and (http_status >= 500 or http_status == 429)
    return True


def retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)


# -- health -----------------------------------------------------------------------------------


class SourceState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # some connector fails, or the last polls had errors or warnings
    FAILING = "failing"  # every connector's last poll failed
    CIRCUIT_OPEN = "circuit_open"
    PAUSED = "paused"
    INACTIVE = "inactive"
    PENDING = "pending"  # connectors configured, never polled yet
    PUSH_ONLY = "push_only"  # no feeds: the agency pushes (REST or Kafka)


@dataclass(frozen=True)
class ConnectorHealth:
    enabled: bool
    last_outcome: Outcome | None
    has_warnings: bool


def source_state(
    *,
    active: bool,
    paused: bool,
    breaker: Breaker,
    now: datetime,
    connectors: Sequence[ConnectorHealth],
    error_rate: float | None,
) -> SourceState:
    if not active:
        return SourceState.INACTIVE
    live = [c for c in connectors if c.enabled]
    if not live:
        return SourceState.PUSH_ONLY
    if paused:
        return SourceState.PAUSED
    if breaker.state is not BreakerState.CLOSED and not breaker.allows(now):
        return SourceState.CIRCUIT_OPEN
    polled = [c for c in live if c.last_outcome is not None]
    if not polled:
        return SourceState.PENDING
    failed = [c for c in polled if c.last_outcome is Outcome.ERROR]
    if len(failed) == len(live):
        return SourceState.FAILING
    if failed or (error_rate or 0) > 0.2 or any(c.has_warnings for c in polled):
        return SourceState.DEGRADED
    return SourceState.OK


def error_rate(fetches: int, errors: int) -> float | None:
    return None if fetches == 0 else round(errors / fetches, 4)


def local_days(today: date, days: int) -> list[date]:
    """The last ``days`` local dates, oldest first, ending today."""
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


@dataclass(frozen=True)
class SectionSeries:
    section: str | None
    standard: bool
    total: int
    per_day: list[tuple[date, int]] = field(default_factory=list)


def section_series(
    counts: Mapping[tuple[str | None, date], int],
    *,
    days: Sequence[date],
    sections: Sequence[str],
    standard: Sequence[str],
) -> list[SectionSeries]:
    """Items per section per local day, every standard and allowed section listed (zeros
    included: a standard section that receives nothing is what the desk must see)."""
    names: list[str | None] = list(dict.fromkeys([*standard, *sections]))
    extra = sorted({s for s, _ in counts if s is not None and s not in names})
    names.extend(extra)
    if any(s is None for s, _ in counts):
        names.append(None)
    out = []
    for name in names:
        per_day = [(d, counts.get((name, d), 0)) for d in days]
        out.append(
            SectionSeries(
                section=name,
                standard=name in standard,
                total=sum(n for _, n in per_day),
                per_day=per_day,
            )
        )
    return out


# -- dates ------------------------------------------------------------------------------------


def as_utc(value: datetime, zone: str = "Asia/Ho_Chi_Minh") -> datetime:
    """Aware UTC; a naive time is the source's local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def local_range(day_from: date, day_to: date, zone: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of local dates ``day_from`` .. ``day_to`` (inclusive)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day_from, time(0), tz).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


def in_range(value: datetime | None, start: datetime, end: datetime, zone: str) -> bool:
    return value is not None and start <= as_utc(value, zone) < end
