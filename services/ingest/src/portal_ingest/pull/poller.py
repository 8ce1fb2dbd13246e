"""Polling one connector: fetch, decode once, parse, decide per item, and hand every new or
changed item to the same use case as pushed items (``Ingestor.submit``, channel ``feed``).

A poll never raises: whatever happens ends as a report (outcome, error kind, message,
warnings, counts) that is recorded for the source's health, and the next poll time, the
connector's backoff and the source's circuit breaker follow from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    Channel,
    article_id_for,
)
from portal_contracts.codec import describe_validation_error
from portal_contracts.partner import PartnerArticleMessage
from portal_ingest.pull import domain
from portal_ingest.pull import repository as repo
from portal_ingest.pull.domain import (
    BreakerPolicy,
    Connector,
    ConnectorKind,
    ErrorKind,
    ItemAction,
    ItemState,
    Listing,
    Outcome,
)
from portal_ingest.pull.encoding import decode_document
from portal_ingest.pull.fetch import Fetcher, FetchError, Response
from portal_ingest.pull.parse import (
    ChildSitemap,
    FeedItem,
    PageContent,
    ParseError,
    extract_page,
    parse_feed,
    parse_sitemap,
)
from portal_ingest.settings import Settings
from portal_ingest.usecases import Ingestor, Refused, StorageUnavailable
from portal_runtime.logs import get_logger

log = get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]

ACCEPT = {
    ConnectorKind.RSS: "application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1",
    ConnectorKind.ATOM: "application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1",
    ConnectorKind.JSONFEED: "application/feed+json, application/json;q=0.9, */*;q=0.1",
    ConnectorKind.SITEMAP: "application/xml, text/xml;q=0.9, */*;q=0.1",
    ConnectorKind.NEWS_SITEMAP: "application/xml, text/xml;q=0.9, */*;q=0.1",
}
ACCEPT_PAGE = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")
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


@dataclass(frozen=True)
class Work:
    """What a pass over listed items is for: a regular poll, or a backfill of a date range."""

    trigger: str
    range_utc: tuple[datetime, datetime] | None = None  # backfill
    page_budget: int | None = None


class _Abort(Exception):
    """Storage (or the database) is down: stop this pass, nothing about the item is recorded."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ungzip(body: bytes, limit: int) -> bytes:
    """Sitemaps are often served as .xml.gz files (not Content-Encoding): inflate, bounded."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise ParseError(ErrorKind.TOO_LARGE, f"gzip sitemap inflates beyond {limit} bytes")
    return out


class Poller:
    def __init__(
        self,
        settings: Settings,
        sessions: Sessions,
        fetcher: Fetcher,
        ingestor: Ingestor,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.fetcher = fetcher
        self.ingestor = ingestor
        self.rng = rng or random.Random()
        self.breaker_policy = BreakerPolicy(
            settings.breaker_failure_threshold,
            settings.breaker_cooldown_s,
            settings.breaker_max_cooldown_s,
        )

    # -- a connector's configuration as the rules need it ----------------------------------------

    async def load(self, connector_id: int) -> tuple[repo.ConnectorRow, Connector, list[int]]:
        async with self.sessions() as session:
            found = await repo.get_connector_for_poll(session, connector_id)
        if found is None:
            raise LookupError(f"connector {connector_id} no longer exists")
        row, source_categories, siblings = found
        return row, self.connector(row, source_categories), siblings

    @staticmethod
    def connector(row: repo.ConnectorRow, source_categories: dict[str, str]) -> Connector:
        return Connector(
            id=row.id,
            source=row.source,
            kind=ConnectorKind(row.kind),
            url=row.url,
            categories=domain.merged_mapping(source_categories, row.categories),
            section=row.section,
            interval_s=row.interval_s,
            fetch_full_page=row.fetch_full_page,
            retract_missing=row.retract_missing,
            lookback_days=row.lookback_days,
        )

    # -- one poll --------------------------------------------------------------------------------

    async def poll(self, connector_id: int, trigger: str = "schedule") -> PollReport:
        started = utcnow()
        clock = asyncio.get_running_loop().time()
        try:
            row, connector, siblings = await self.load(connector_id)
        except LookupError as exc:
            report = PollReport(connector_id, "", "", trigger, started)
            return report.fail(ErrorKind.INTERNAL, str(exc))
        report = PollReport(connector.id, connector.source, connector.url, trigger, started)
        try:
            if connector.kind.is_sitemap:
                await self._poll_sitemap(row, connector, siblings, report)
            else:
                await self._poll_feed(row, connector, siblings, report)
        except FetchError as exc:
            report.fail(exc.kind, exc.message, exc.http_status)
        except ParseError as exc:
            report.fail(exc.kind, exc.message)
        except _Abort as exc:
            report.fail(ErrorKind.STORAGE, str(exc))
        except asyncio.CancelledError:
            await self._release(connector_id)
            raise
        except Exception as exc:  # a bug must not stop other sources: record it and go on
            log.exception("poll_failed", connector_id=connector_id, source=connector.source)
            report.fail(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        report.duration_ms = int((asyncio.get_running_loop().time() - clock) * 1000)
        try:
            await self._record(row, report)
        except Exception:
            log.exception("poll_record_failed", connector_id=connector_id)
            await self._release(connector_id)
        log.info(
            "feed_polled",
            source=connector.source,
            connector_id=connector.id,
            kind=connector.kind.value,
            outcome=report.outcome.value,
            error_kind=report.error_kind.value if report.error_kind else None,
            counts=report.counts.as_dict(),
            duration_ms=report.duration_ms,
            trigger=trigger,
        )
        return report

    async def _release(self, connector_id: int) -> None:
        try:
            async with self.sessions.begin() as session:
                await repo.release_lease(session, connector_id)
        except Exception:
            log.warning("lease_release_failed", connector_id=connector_id, exc_info=True)

    async def _poll_feed(
        self,
        row: repo.ConnectorRow,
        connector: Connector,
        siblings: list[int],
        report: PollReport,
    ) -> None:
        resp = await self.fetcher.get(
            connector.url,
            max_bytes=self.settings.feed_max_bytes,
            accept=ACCEPT[connector.kind],
            etag=row.etag,
            last_modified=row.last_modified,
        )
        if resp.not_modified:
            report.outcome = Outcome.NOT_MODIFIED
            report.etag, report.last_modified, report.body_hash = (
                row.etag,
                row.last_modified,
                row.body_hash,
            )
            await self._still_missing(connector, report)
            return
        body_hash = hashlib.sha256(resp.body).hexdigest()
        if body_hash == row.body_hash and not await self._retry_work(connector.id):
            report.outcome = Outcome.UNCHANGED
            report.etag, report.last_modified, report.body_hash = (
                resp.etag,
                resp.last_modified,
                body_hash,
            )
            await self._still_missing(connector, report)
            return
        kind = "json" if connector.kind is ConnectorKind.JSONFEED else "xml"
        decoded = decode_document(resp.body, resp.content_type, kind)
        if decoded.warning:
            report.warn(f"{connector.url}: {decoded.warning}")
        parsed = await asyncio.to_thread(
            parse_feed,
            connector.kind,
            decoded.text,
            resp.final_url,
            self.settings.max_items_per_poll,
        )
        for warning in parsed.warnings:
            report.warn(f"{connector.url}: {warning}")
        dates = [
            domain.as_utc(i.date, self.settings.source_time_zone) for i in parsed.items if i.date
        ]
        listing = Listing(
            complete=parsed.complete and len(parsed.items) < self.settings.max_items_per_poll,
            window_start=min(dates) if dates else None,
            windowed=True,
        )
        document = {"url": connector.url, "final_url": resp.final_url, "encoding": decoded.encoding}
        await self.process(
            connector,
            siblings,
            parsed.items,
            listing,
            report,
            Work("schedule", page_budget=self.settings.max_pages_per_poll),
            document,
            first_poll=row.first_polled_at is None,
        )
        if report.complete_work:
            report.etag, report.last_modified, report.body_hash = (
                resp.etag,
                resp.last_modified,
                body_hash,
            )

    async def _retry_work(self, connector_id: int) -> bool:
        async with self.sessions() as session:
            n = await repo.count_retry_work(session, connector_id, self.settings.page_max_attempts)
        return n > 0

    # -- sitemaps --------------------------------------------------------------------------------

    async def read_sitemap(
        self,
        connector: Connector,
        report: PollReport,
        *,
        etag: str | None,
        last_modified: str | None,
        children_since: datetime | None,
        max_children: int,
    ) -> tuple[Response, list[FeedItem], bool] | None:
        """The addresses a sitemap (or sitemap index) lists; None when not modified.

        Returns the response, the items, and whether the listing is complete."""
        resp = await self.fetcher.get(
            connector.url,
            max_bytes=self.settings.feed_max_bytes,
            accept=ACCEPT[connector.kind],
            etag=etag,
            last_modified=last_modified,
        )
        if resp.not_modified:
            return None
        parsed = self._parse_sitemap(connector.url, resp, report)
        if not parsed.children:
            return resp, parsed.items, parsed.complete
        children = self._pick_children(parsed.children, children_since, max_children)
        complete = parsed.complete and len(children) == len(parsed.children)
        items: list[FeedItem] = []
        for child in children:
            try:
                child_resp = await self.fetcher.get(
                    child.url,
                    max_bytes=self.settings.feed_max_bytes,
                    accept=ACCEPT[connector.kind],
                )
                child_parsed = self._parse_sitemap(child.url, child_resp, report)
            except (FetchError, ParseError) as exc:
                complete = False
                report.warn(f"child sitemap {child.url}: {getattr(exc, 'message', exc)}")
                continue
            if child_parsed.children:
                report.warn(f"child sitemap {child.url} is itself an index; not followed")
                complete = False
            complete = complete and child_parsed.complete
            items.extend(child_parsed.items)
            if len(items) >= self.settings.max_sitemap_urls:
                report.warn(f"more than {self.settings.max_sitemap_urls} addresses; rest skipped")
                complete = False
                break
        return resp, items[: self.settings.max_sitemap_urls], complete

    def _parse_sitemap(self, url: str, resp: Response, report: PollReport) -> Any:
        body = _ungzip(resp.body, self.settings.feed_max_bytes)
        decoded = decode_document(body, resp.content_type, "xml")
        if decoded.warning:
            report.warn(f"{url}: {decoded.warning}")
        parsed = parse_sitemap(decoded.text, resp.final_url, self.settings.max_sitemap_urls)
        for warning in parsed.warnings:
            report.warn(f"{url}: {warning}")
        return parsed

    @staticmethod
    def _pick_children(
        children: Sequence[ChildSitemap], since: datetime | None, limit: int
    ) -> list[ChildSitemap]:
        """Child sitemaps worth reading: changed since ``since`` (undated ones always), the
        most recently changed first, at most ``limit``."""
        picked = [
            c
            for c in children
            if since is None or c.lastmod is None or domain.as_utc(c.lastmod) >= since
        ]
        epoch = datetime.min.replace(tzinfo=UTC)
        picked.sort(key=lambda c: domain.as_utc(c.lastmod) if c.lastmod else epoch, reverse=True)
        return picked[:limit]

    async def _poll_sitemap(
        self,
        row: repo.ConnectorRow,
        connector: Connector,
        siblings: list[int],
        report: PollReport,
    ) -> None:
        cutoff = utcnow() - timedelta(days=connector.lookback_days)
        result = await self.read_sitemap(
            connector,
            report,
            etag=row.etag,
            last_modified=row.last_modified,
            children_since=cutoff,
            max_children=self.settings.max_child_sitemaps,
        )
        if result is None:
            report.outcome = Outcome.NOT_MODIFIED
            report.etag, report.last_modified = row.etag, row.last_modified
            await self._still_missing(connector, report)
            return
        resp, items, complete = result
        news = connector.kind is ConnectorKind.NEWS_SITEMAP
        dates = [domain.as_utc(i.date, self.settings.source_time_zone) for i in items if i.date]
        listing = Listing(
            complete=complete,
            window_start=min(dates) if news and dates else None,
            windowed=news,
        )
        document = {"url": connector.url, "final_url": resp.final_url}
        await self.process(
            connector,
            siblings,
            items,
            listing,
            report,
            Work("schedule", page_budget=self.settings.max_pages_per_poll),
            document,
            first_poll=row.first_polled_at is None,
            history_before=cutoff,
        )
        if report.complete_work:
            report.etag, report.last_modified = resp.etag, resp.last_modified

    # -- items -----------------------------------------------------------------------------------

    async def process(
        self,
        connector: Connector,
        siblings: list[int],
        items: Sequence[FeedItem],
        listing: Listing | None,
        report: PollReport,
        work: Work,
        document: dict[str, Any],
        *,
        first_poll: bool = False,
        history_before: datetime | None = None,
    ) -> None:
        """Decide and act on every listed item, then judge the ones that vanished."""
        zone = self.settings.source_time_zone
        by_hash: dict[str, FeedItem] = {}
        for item in items:
            by_hash.setdefault(domain.key_hash(item.key), item)
        async with self.sessions() as session:
            known = await repo.get_items(session, connector.source, list(by_hash))
        epoch = datetime.min.replace(tzinfo=UTC)
        ordered = sorted(
            by_hash.items(),
            key=lambda kv: domain.as_utc(kv[1].date, zone) if kv[1].date else epoch,
        )
        budget = work.page_budget
        seen: list[str] = []
        for digest, item in ordered:
            current = known.get(digest)
            if work.range_utc is not None and not domain.in_range(item.date, *work.range_utc, zone):
                report.counts.out_of_range += 1
                continue
            action = domain.classify(
                None
                if current is None
                else domain.KnownItem(
                    current.connector_id, current.fingerprint, current.state, current.attempts
                ),
                connector_id=connector.id,
                live_connectors=siblings,
                item_fingerprint=item.fingerprint(),
                max_attempts=self.settings.page_max_attempts,
            )
            if action is ItemAction.OTHER_CONNECTOR:
                report.counts.other_connector += 1
                continue
            backfilling = work.range_utc is not None
            if backfilling and current is not None and current.state is ItemState.SEEN:
                action = ItemAction.UPDATE  # history left to this backfill
            seen.append(digest)
            if action in (ItemAction.UNCHANGED, ItemAction.GIVE_UP):
                report.counts.unchanged += 1
                continue
            if action is ItemAction.RECHECK:
                assert current is not None
                await self.recheck_held(connector, current, report)
                continue
            if history_before is not None and work.range_utc is None:
                # A sitemap lists history: only recent addresses (or, after the first poll,
                # new undated ones) are polled; older ones are left to a backfill.
                dated = item.date is not None
                old = dated and domain.as_utc(item.date, zone) < history_before  # type: ignore[arg-type]
                if old or (not dated and first_poll and current is None):
                    await self._record_item(
                        connector, item, digest, ItemState.SEEN, None, current=current
                    )
                    report.counts.history += 1
                    continue
            if connector.fetches_pages and budget is not None:
                if budget <= 0:
                    report.counts.deferred += 1
                    report.complete_work = False
                    seen.pop()
                    continue
                budget -= 1
            await self.ingest_item(connector, item, digest, current, action, report, document)
        async with self.sessions.begin() as session:
            await repo.mark_seen(session, connector.source, seen, utcnow())
        if listing is not None and work.range_utc is None:
            await self._vanished(connector, set(by_hash), listing, report)

    async def ingest_item(
        self,
        connector: Connector,
        item: FeedItem,
        digest: str,
        current: repo.ItemRow | None,
        action: ItemAction,
        report: PollReport,
        document: dict[str, Any],
    ) -> None:
        page: PageContent | None = None
        page_doc: dict[str, Any] | None = None
        if connector.fetches_pages:
            if not item.url:
                await self._item_failed(connector, item, digest, current, "the item has no link")
                report.counts.failed += 1
                return
            try:
                page, page_doc = await self._fetch_page(item.url, report)
            except (FetchError, ParseError) as exc:
                reason = f"article page: {exc.message}"
                await self._item_failed(connector, item, digest, current, reason)
                report.counts.failed += 1
                if current is None or current.attempts + 1 < self.settings.page_max_attempts:
                    report.complete_work = False
                report.warn(f"{item.url}: {exc.message}")
                return
        try:
            content = self._content(connector, item, page)
        except ValueError as exc:
            await self._item_failed(connector, item, digest, current, str(exc))
            report.counts.failed += 1
            return
        raw = domain.canonical_json(
            {
                "channel": "feed",
                "connector": {
                    "id": connector.id,
                    "kind": connector.kind.value,
                    "url": connector.url,
                },
                "document": document,
                "fetched_at": utcnow().isoformat(),
                "item": item.raw,
                "page": page_doc,
            }
        )
        placement = domain.place(content.categories, connector.categories, connector.section)
        if placement.held:
            await self._record_item(
                connector,
                item,
                digest,
                ItemState.HELD,
                placement.held_reason,
                current=current,
                held_content=content.model_dump(mode="json"),
                held_raw=raw,
                categories=list(content.categories),
            )
            report.counts.held += 1
            return
        content = content.model_copy(update={"section": placement.section})
        state = await self.submit(connector, item, digest, current, content, raw, report)
        if state is ItemState.INGESTED and action is ItemAction.RESTORE:
            report.counts.restored += 1

    async def submit(
        self,
        connector: Connector,
        item: FeedItem,
        digest: str,
        current: repo.ItemRow | None,
        content: ArticleContent,
        raw: bytes,
        report: PollReport,
        *,
        state: ItemState = ItemState.INGESTED,
    ) -> ItemState:
        external_id = domain.external_id_for(item.key)
        message = PartnerArticleMessage(
            external_id=external_id,
            action=ArticleAction.UPSERT,
            content=content,
            backfill=report.trigger == "backfill",  # a sitemap backfill: the bulk lane
        )
        try:
            receipt = await self.ingestor.submit(connector.source, message, Channel.FEED, raw)
        except Refused as exc:
            await self._record_item(
                connector,
                item,
                digest,
                ItemState.REFUSED,
                exc.reason,
                current=current,
                categories=list(content.categories),
                section=content.section,
            )
            report.counts.refused += 1
            report.warn(f"{item.url or item.key}: refused: {exc.reason}")
            return ItemState.REFUSED
        except StorageUnavailable as exc:
            report.complete_work = False
            raise _Abort(str(exc)) from exc
        if receipt.duplicate:
            report.counts.unchanged += 1
        elif receipt.revision == 1:
            report.counts.new += 1
        else:
            report.counts.updated += 1
        await self._record_item(
            connector,
            item,
            digest,
            state,
            None,
            current=current,
            revision=receipt.revision,
            categories=list(content.categories),
            section=content.section,
            title=content.title,
        )
        return state

    async def recheck_held(
        self, connector: Connector, current: repo.ItemRow, report: PollReport
    ) -> bool:
        """A held item whose categories are mapped now goes to the pipeline."""
        if current.held_content is None or current.held_raw is None:
            report.counts.unchanged += 1
            return False
        placement = domain.place(current.categories, connector.categories, connector.section)
        if placement.held:
            report.counts.unchanged += 1
            return False
        content = ArticleContent.model_validate(
            {**current.held_content, "section": placement.section}
        )
        item = FeedItem(key=current.item_key, url=current.url, published_at=current.published_at)
        await self.submit(
            connector, item, current.key_hash, current, content, current.held_raw, report
        )
        report.counts.released += 1
        return True

    async def _fetch_page(self, url: str, report: PollReport) -> tuple[PageContent, dict[str, Any]]:
        resp = await self.fetcher.get(
            url, max_bytes=self.settings.page_max_bytes, accept=ACCEPT_PAGE
        )
        media = (resp.content_type or "text/html").split(";")[0].strip().lower()
        if media not in _HTML_TYPES:
            raise ParseError(ErrorKind.CONTENT_TYPE, f"{url}: {media} is not an HTML page")
        decoded = decode_document(resp.body, resp.content_type, "html")
        if decoded.warning:
            report.warn(f"{url}: {decoded.warning}")
        page = await asyncio.to_thread(extract_page, decoded.text, resp.final_url)
        page_doc = {
            "url": url,
            "final_url": resp.final_url,
            "status": resp.status,
            "content_type": resp.content_type,
            "declared_charset": decoded.declared,
            "decoded_as": decoded.encoding,
            "html": decoded.text,
        }
        return page, page_doc

    def _content(
        self, connector: Connector, item: FeedItem, page: PageContent | None
    ) -> ArticleContent:
        """The article from the feed item and, when fetched, its page (the page's main
        content wins over a feed summary; the feed's title and dates win over the page's)."""
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
                {"url": i.url, "caption": i.caption}
                for i in dict((i.url, i) for i in images).values()
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

    async def _record_item(
        self,
        connector: Connector,
        item: FeedItem,
        digest: str,
        state: ItemState,
        reason: str | None,
        *,
        current: repo.ItemRow | None,
        revision: int | None = None,
        held_content: dict[str, Any] | None = None,
        held_raw: bytes | None = None,
        categories: list[str] | None = None,
        section: str | None = None,
        title: str | None = None,
        attempts: int = 0,
    ) -> None:
        external_id = domain.external_id_for(item.key)
        now = utcnow()
        published = item.date
        values: dict[str, Any] = {
            "source": connector.source,
            "key_hash": digest,
            "item_key": item.key,
            "external_id": external_id,
            "article_id": article_id_for(connector.source, external_id),
            "connector_id": connector.id,
            "url": (item.url or "")[:2000] or (current.url if current else None),
            "title": (title or item.title or (current.title if current else None) or "")[:500]
            or None,
            "categories": [
                c[:200] for c in (categories if categories is not None else item.categories)
            ],
            "section": section,
            "fingerprint": item.fingerprint()
            if item.raw or current is None
            else current.fingerprint,
            "state": state.value,
            "reason": reason,
            "attempts": attempts,
            "revision": revision
            if revision is not None
            else (current.revision if current else None),
            "published_at": domain.as_utc(published, self.settings.source_time_zone)
            if published
            else (current.published_at if current else None),
            "held_content": held_content,
            "held_raw": held_raw,
            "last_seen_at": now,
            "missing_polls": 0,
            "missing_since": None,
        }
        async with self.sessions.begin() as session:
            await repo.upsert_item(session, values)

    async def _item_failed(
        self,
        connector: Connector,
        item: FeedItem,
        digest: str,
        current: repo.ItemRow | None,
        reason: str,
    ) -> None:
        attempts = 1
        if current is not None and current.state is ItemState.FAILED:
            same = current.fingerprint == item.fingerprint()
            attempts = current.attempts + 1 if same else 1
        log.info("feed_item_failed", source=connector.source, url=item.url, reason=reason)
        await self._record_item(
            connector,
            item,
            digest,
            ItemState.FAILED,
            reason[:2000],
            current=current,
            attempts=attempts,
        )

    async def _vanished(
        self, connector: Connector, present: set[str], listing: Listing, report: PollReport
    ) -> None:
        if report.outcome is Outcome.ERROR or not listing.complete:
            return
        if listing.windowed and listing.window_start is None:
            return  # nothing dated: no way to tell removed from rotated out
        async with self.sessions() as session:
            missing = await repo.listed_items_missing(
                session,
                connector.id,
                present,
                newer_than=listing.window_start if listing.windowed else None,
            )
        now = utcnow()
        for gone in missing:
            if not domain.vanished(listing, gone.published_at):
                continue
            polls = gone.missing_polls + 1
            if domain.should_retract(
                connector.retract_missing, polls, self.settings.retract_after_missing_polls
            ):
                await self._retract(connector, gone, polls, report)
                continue
            async with self.sessions.begin() as session:
                await repo.update_item(
                    session,
                    gone.source,
                    gone.key_hash,
                    {"missing_polls": polls, "missing_since": gone.missing_since or now},
                )

    async def _still_missing(self, connector: Connector, report: PollReport) -> None:
        """The listing did not change: items found missing before are still missing."""
        if not connector.retract_missing:
            return  # the count only matters to the retraction policy
        async with self.sessions() as session:
            missing = await repo.listed_items_missing(session, connector.id, (), flagged_only=True)
        for gone in missing:
            polls = gone.missing_polls + 1
            if domain.should_retract(
                connector.retract_missing, polls, self.settings.retract_after_missing_polls
            ):
                await self._retract(connector, gone, polls, report)
            else:
                async with self.sessions.begin() as session:
                    await repo.update_item(
                        session, gone.source, gone.key_hash, {"missing_polls": polls}
                    )

    async def _retract(
        self, connector: Connector, gone: repo.ItemRow, polls: int, report: PollReport
    ) -> None:
        message = PartnerArticleMessage(external_id=gone.external_id, action=ArticleAction.RETRACT)
        raw = domain.canonical_json(
            {
                "channel": "feed",
                "action": "retract",
                "connector": {
                    "id": connector.id,
                    "kind": connector.kind.value,
                    "url": connector.url,
                },
                "reason": f"missing from the source's listing in {polls} polls in a row "
                "(retract_missing policy)",
                "item_key": gone.item_key,
                "decided_at": utcnow().isoformat(),
            }
        )
        try:
            await self.ingestor.submit(connector.source, message, Channel.FEED, raw)
        except Refused as exc:
            report.warn(f"{gone.url or gone.item_key}: retraction refused: {exc.reason}")
            return
        except StorageUnavailable as exc:
            raise _Abort(str(exc)) from exc
        async with self.sessions.begin() as session:
            await repo.update_item(
                session,
                gone.source,
                gone.key_hash,
                {
                    "state": ItemState.RETRACTED.value,
                    "reason": "vanished from the source's listing (retract_missing policy)",
                    "missing_polls": polls,
                    "missing_since": gone.missing_since or utcnow(),
                },
            )
        report.counts.retracted += 1

    # -- after a poll ----------------------------------------------------------------------------

    async def _record(self, row: repo.ConnectorRow, report: PollReport) -> None:
        now = utcnow()
        success = report.outcome is not Outcome.ERROR
        values: dict[str, Any] = {
            "last_fetch_at": now,
            "last_outcome": report.outcome.value,
            "last_http_status": report.http_status,
            "last_warnings": report.warnings,
        }
        if success:
            values.update(
                consecutive_failures=0,
                last_success_at=now,
                first_polled_at=row.first_polled_at or now,
                etag=report.etag if report.complete_work else None,
                last_modified=report.last_modified if report.complete_work else None,
                body_hash=report.body_hash if report.complete_work else None,
                next_fetch_at=domain.next_poll_at(
                    now, row.interval_s, self.settings.feed_jitter, self.rng
                ),
            )
        else:
            failures = row.consecutive_failures + 1
            values.update(
                consecutive_failures=failures,
                last_error_kind=report.error_kind.value if report.error_kind else None,
                last_error=report.message,
                last_error_at=now,
                next_fetch_at=domain.retry_at(
                    now,
                    row.interval_s,
                    failures,
                    self.settings.feed_max_backoff_s,
                    self.settings.feed_jitter,
                    self.rng,
                ),
            )
        async with self.sessions.begin() as session:
            pull = await repo.get_pull_source(session, row.source, for_update=True)
            if pull is None:
                await repo.ensure_pull_source(session, row.source)
                pull = await repo.get_pull_source(session, row.source, for_update=True)
            assert pull is not None
            breaker = domain.breaker_after(
                pull.breaker,
                success=success,
                counts=domain.counts_for_breaker(report.error_kind, report.http_status),
                now=now,
                policy=self.breaker_policy,
            )
            if breaker != pull.breaker:
                await repo.set_breaker(session, row.source, breaker)
                if breaker.state is domain.BreakerState.OPEN:
                    log.warning(
                        "circuit_opened",
                        source=row.source,
                        failures=breaker.failures,
                        open_until=breaker.open_until.isoformat() if breaker.open_until else None,
                    )
            await repo.finish_poll(session, row.id, values)
            await repo.insert_fetch_log(
                session,
                {
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
                },
            )

    # -- backfill --------------------------------------------------------------------------------

    async def backfill(
        self,
        connector_id: int,
        date_from: date,
        date_to: date,
        report: PollReport,
        *,
        cancelled: Any = None,
    ) -> None:
        """Every address of the connector's sitemap dated within the local date range, fetched
        and sent like a polled item (already known, unchanged items are skipped)."""
        _row, connector, siblings = await self.load(connector_id)
        start, end = domain.local_range(date_from, date_to, self.settings.source_time_zone)
        result = await self.read_sitemap(
            connector,
            report,
            etag=None,
            last_modified=None,
            children_since=start,
            max_children=max(self.settings.max_child_sitemaps, 1000),
        )
        assert result is not None  # no validators sent: never 304
        resp, items, _complete = result
        selected = [
            i for i in items if domain.in_range(i.date, start, end, self.settings.source_time_zone)
        ]
        report.counts.out_of_range += len(items) - len(selected)
        if len(selected) > self.settings.max_backfill_urls:
            report.warn(
                f"{len(selected)} addresses in range; the first {self.settings.max_backfill_urls} "
                "are backfilled"
            )
            selected = selected[: self.settings.max_backfill_urls]
        document = {"url": connector.url, "final_url": resp.final_url, "backfill": True}
        # Batches keep memory and the cancellation check bounded.
        for offset in range(0, len(selected), 50):
            if cancelled is not None and await cancelled():
                report.warn("cancelled by an operator")
                return
            await self.process(
                connector,
                siblings,
                selected[offset : offset + 50],
                None,
                report,
                Work("backfill", range_utc=(start, end)),
                document,
            )
