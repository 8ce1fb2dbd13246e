"""Polling one connector: read what it lists (``listing``), decide per item (``decide``), hand
every new or changed item to the same use case as pushed items (``Ingestor.submit``, channel
``feed``), and record it all (``store``).

A poll never raises: whatever happens ends as a report (outcome, error kind, message,
warnings, counts) that is recorded for the source's health, and the next poll time, the
connector's backoff and the source's circuit breaker follow from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from portal_contracts.articles import ArticleAction, ArticleContent, Channel
from portal_contracts.partner import PartnerArticleMessage
from portal_ingest.intake_usecases import Ingestor
from portal_ingest.pull import domain
from portal_ingest.pull import repository as repo
from portal_ingest.pull.decide import (
    Backoff,
    Decision,
    ItemRecord,
    Pass,
    Step,
    article_content,
    connector_after_poll,
    failed_attempts,
    item_raw,
    item_values,
    listing_of,
    plan,
    retraction_raw,
    unique_items,
)
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
from portal_ingest.pull.fetch import Fetcher, FetchError
from portal_ingest.pull.listing import Lister
from portal_ingest.pull.parse import FeedItem, ParseError
from portal_ingest.pull.report import PollReport, Work
from portal_ingest.pull.store import PollStore, Sessions
from portal_ingest.settings import Settings
from portal_ingest.usecases import Refused, StorageUnavailable
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger

log = get_logger(__name__)

BACKFILL_BATCH = 50  # items per pass: memory and the cancellation check stay bounded


class _Abort(Exception):
    """Storage (or the database) is down: stop this pass, nothing about the item is recorded."""


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
        self.fetcher = fetcher
        self.lister = Lister(settings, fetcher)
        self.store = PollStore(sessions)
        self.ingestor = ingestor
        self.rng = rng or random.Random()
        self.breaker_policy = BreakerPolicy(
            settings.breaker_failure_threshold,
            settings.breaker_cooldown_s,
            settings.breaker_max_cooldown_s,
        )
        self.backoff = Backoff(settings.feed_jitter, settings.feed_max_backoff_s)

    # -- one poll --------------------------------------------------------------------------------

    async def poll(self, connector_id: int, trigger: str = "schedule") -> PollReport:
        started = utcnow()
        clock = asyncio.get_running_loop().time()
        try:
            row, connector, siblings = await self.store.load(connector_id)
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
            await self.store.release(connector_id)
            raise
        except Exception as exc:  # a bug must not stop other sources: record it and go on
            log.exception("poll_failed", connector_id=connector_id, source=connector.source)
            report.fail(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        report.duration_ms = int((asyncio.get_running_loop().time() - clock) * 1000)
        await self._record(row, report)
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

    async def _record(self, row: repo.ConnectorRow, report: PollReport) -> None:
        now = utcnow()
        values = connector_after_poll(row, report, now, self.backoff, self.rng)
        try:
            await self.store.record_poll(row, report, values, now=now, policy=self.breaker_policy)
        except Exception:
            log.exception("poll_record_failed", connector_id=row.id)
            await self.store.release(row.id)

    def _schedule_work(self) -> Work:
        return Work("schedule", page_budget=self.settings.max_pages_per_poll)

    async def _poll_feed(
        self, row: repo.ConnectorRow, connector: Connector, siblings: list[int], report: PollReport
    ) -> None:
        resp = await self.lister.get_listing(connector.url, connector, row.etag, row.last_modified)
        if resp.not_modified:
            report.outcome = Outcome.NOT_MODIFIED
            report.keep_validators(row.etag, row.last_modified, row.body_hash)
            await self._still_missing(connector, report)
            return
        body_hash = hashlib.sha256(resp.body).hexdigest()
        if body_hash == row.body_hash and not await self.store.has_retry_work(
            connector.id, self.settings.page_max_attempts
        ):
            report.outcome = Outcome.UNCHANGED
            report.keep_validators(resp.etag, resp.last_modified, body_hash)
            await self._still_missing(connector, report)
            return
        parsed, encoding = await self.lister.parse_feed(connector, resp, report)
        complete = parsed.complete and len(parsed.items) < self.settings.max_items_per_poll
        listing = listing_of(
            parsed.items, complete=complete, windowed=True, zone=self.settings.source_time_zone
        )
        document = {"url": connector.url, "final_url": resp.final_url, "encoding": encoding}
        work = self._schedule_work()
        first_poll = row.first_polled_at is None
        await self.process(
            self._pass(connector, siblings, work, first_poll=first_poll),
            parsed.items,
            listing,
            report,
            document,
        )
        if report.complete_work:
            report.keep_validators(resp.etag, resp.last_modified, body_hash)

    async def _poll_sitemap(
        self, row: repo.ConnectorRow, connector: Connector, siblings: list[int], report: PollReport
    ) -> None:
        cutoff = utcnow() - timedelta(days=connector.lookback_days)
        found = await self.lister.read_sitemap(
            connector,
            report,
            etag=row.etag,
            last_modified=row.last_modified,
            children_since=cutoff,
            max_children=self.settings.max_child_sitemaps,
        )
        if found is None:
            report.outcome = Outcome.NOT_MODIFIED
            report.etag, report.last_modified = row.etag, row.last_modified
            await self._still_missing(connector, report)
            return
        news = connector.kind is ConnectorKind.NEWS_SITEMAP
        listing = listing_of(
            found.items,
            complete=found.complete,
            windowed=news,
            zone=self.settings.source_time_zone,
        )
        document = {"url": connector.url, "final_url": found.response.final_url}
        p = self._pass(
            connector,
            siblings,
            self._schedule_work(),
            first_poll=row.first_polled_at is None,
            history_before=cutoff,
        )
        await self.process(p, found.items, listing, report, document)
        if report.complete_work:
            report.etag = found.response.etag
            report.last_modified = found.response.last_modified

    def _pass(
        self,
        connector: Connector,
        siblings: Sequence[int],
        work: Work,
        *,
        first_poll: bool = False,
        history_before: datetime | None = None,
    ) -> Pass:
        return Pass(
            connector=connector,
            siblings=siblings,
            work=work,
            max_attempts=self.settings.page_max_attempts,
            zone=self.settings.source_time_zone,
            first_poll=first_poll,
            history_before=history_before,
        )

    # -- items -----------------------------------------------------------------------------------

    async def process(
        self,
        p: Pass,
        items: Sequence[FeedItem],
        listing: Listing | None,
        report: PollReport,
        document: dict[str, Any],
    ) -> None:
        """Decide and act on every listed item, then judge the ones that vanished."""
        connector = p.connector
        by_hash = unique_items(items)
        known = await self.store.known_items(connector.source, list(by_hash))
        steps = plan(by_hash, known, p)
        for step in steps:
            await self._carry_out(connector, step, report, document)
        await self.store.mark_seen(connector.source, [s.digest for s in steps if s.seen], utcnow())
        if listing is not None and p.work.range_utc is None:
            await self._vanished(connector, set(by_hash), listing, report)

    async def _carry_out(
        self, connector: Connector, step: Step, report: PollReport, document: dict[str, Any]
    ) -> None:
        counts = report.counts
        match step.decision:
            case Decision.OUT_OF_RANGE:
                counts.out_of_range += 1
            case Decision.OTHER_CONNECTOR:
                counts.other_connector += 1
            case Decision.UNCHANGED:
                counts.unchanged += 1
            case Decision.RECHECK:
                assert step.current is not None
                await self.recheck_held(connector, step.current, report)
            case Decision.HISTORY:
                await self._save(connector, step.item, step.digest, ItemState.SEEN, step.current)
                counts.history += 1
            case Decision.DEFERRED:
                counts.deferred += 1
                report.complete_work = False
            case Decision.INGEST:
                await self.ingest_item(connector, step, report, document)

    async def ingest_item(
        self, connector: Connector, step: Step, report: PollReport, document: dict[str, Any]
    ) -> None:
        item, digest, current = step.item, step.digest, step.current
        page = page_doc = None
        if connector.fetches_pages:
            if not item.url:
                await self._item_failed(connector, step, "the item has no link", report)
                return
            try:
                page, page_doc = await self.lister.read_page(item.url, report)
            except (FetchError, ParseError) as exc:
                await self._item_failed(connector, step, f"article page: {exc.message}", report)
                if current is None or current.attempts + 1 < self.settings.page_max_attempts:
                    report.complete_work = False
                report.warn(f"{item.url}: {exc.message}")
                return
        try:
            content = article_content(item, page)
        except ValueError as exc:
            await self._item_failed(connector, step, str(exc), report)
            return
        raw = item_raw(connector, document, item, page_doc, utcnow())
        placement = domain.place(content.categories, connector.categories, connector.section)
        if placement.held:
            record = ItemRecord(
                reason=placement.held_reason,
                held_content=content.model_dump(mode="json"),
                held_raw=raw,
                categories=list(content.categories),
            )
            await self._save(connector, item, digest, ItemState.HELD, current, record)
            report.counts.held += 1
            return
        content = content.model_copy(update={"section": placement.section})
        state = await self.submit(connector, item, digest, current, content, raw, report)
        if state is ItemState.INGESTED and step.action is ItemAction.RESTORE:
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
        """Send the article down the pipeline (as a partner's push) and record the item."""
        external_id = domain.external_id_for(item.key)
        message = PartnerArticleMessage(
            external_id=external_id,
            action=ArticleAction.UPSERT,
            content=content,
            backfill=report.trigger == "backfill",  # a sitemap backfill: the bulk lane
        )
        categories = list(content.categories)
        try:
            receipt = await self.ingestor.submit(connector.source, message, Channel.FEED, raw)
        except Refused as exc:
            record = ItemRecord(reason=exc.reason, categories=categories, section=content.section)
            await self._save(connector, item, digest, ItemState.REFUSED, current, record)
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
        record = ItemRecord(
            revision=receipt.revision,
            categories=categories,
            section=content.section,
            title=content.title,
        )
        await self._save(connector, item, digest, state, current, record)
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

    async def _save(
        self,
        connector: Connector,
        item: FeedItem,
        digest: str,
        state: ItemState,
        current: repo.ItemRow | None,
        record: ItemRecord | None = None,
    ) -> None:
        values = item_values(
            connector,
            item,
            digest,
            state,
            record or ItemRecord(),
            current=current,
            now=utcnow(),
            zone=self.settings.source_time_zone,
        )
        await self.store.save_item(values)

    async def _item_failed(
        self, connector: Connector, step: Step, reason: str, report: PollReport
    ) -> None:
        log.info("feed_item_failed", source=connector.source, url=step.item.url, reason=reason)
        record = ItemRecord(reason=reason[:2000], attempts=failed_attempts(step.current, step.item))
        await self._save(connector, step.item, step.digest, ItemState.FAILED, step.current, record)
        report.counts.failed += 1

    # -- items no longer listed ------------------------------------------------------------------

    async def _vanished(
        self, connector: Connector, present: set[str], listing: Listing, report: PollReport
    ) -> None:
        if report.outcome is Outcome.ERROR or not listing.complete:
            return
        if listing.windowed and listing.window_start is None:
            return  # nothing dated: no way to tell removed from rotated out
        newer_than = listing.window_start if listing.windowed else None
        now = utcnow()
        for gone in await self.store.missing(connector.id, present, newer_than=newer_than):
            if domain.vanished(listing, gone.published_at):
                since = gone.missing_since or now
                await self._missing_again(connector, gone, report, missing_since=since)

    async def _still_missing(self, connector: Connector, report: PollReport) -> None:
        """The listing did not change: items found missing before are still missing."""
        if not connector.retract_missing:
            return  # the count only matters to the retraction policy
        for gone in await self.store.missing(connector.id, (), flagged_only=True):
            await self._missing_again(connector, gone, report)

    async def _missing_again(
        self,
        connector: Connector,
        gone: repo.ItemRow,
        report: PollReport,
        *,
        missing_since: datetime | None = None,
    ) -> None:
        """One more poll without the item: retracted once the source's policy says so."""
        polls = gone.missing_polls + 1
        threshold = self.settings.retract_after_missing_polls
        if domain.should_retract(connector.retract_missing, polls, threshold):
            await self._retract(connector, gone, polls, report)
            return
        values: dict[str, Any] = {"missing_polls": polls}
        if missing_since is not None:
            values["missing_since"] = missing_since
        await self.store.update_item(gone, values)

    async def _retract(
        self, connector: Connector, gone: repo.ItemRow, polls: int, report: PollReport
    ) -> None:
        message = PartnerArticleMessage(external_id=gone.external_id, action=ArticleAction.RETRACT)
        raw = retraction_raw(connector, gone, polls, utcnow())
        try:
            await self.ingestor.submit(connector.source, message, Channel.FEED, raw)
        except Refused as exc:
            report.warn(f"{gone.url or gone.item_key}: retraction refused: {exc.reason}")
            return
        except StorageUnavailable as exc:
            raise _Abort(str(exc)) from exc
        await self.store.update_item(
            gone,
            {
                "state": ItemState.RETRACTED.value,
                "reason": "vanished from the source's listing (retract_missing policy)",
                "missing_polls": polls,
                "missing_since": gone.missing_since or utcnow(),
            },
        )
        report.counts.retracted += 1

    # -- backfill --------------------------------------------------------------------------------

    async def backfill(
        self,
        connector_id: int,
        date_from: date,
        date_to: date,
        report: PollReport,
        *,
        cancelled: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Every address of the connector's sitemap dated within the local date range, fetched
        and sent like a polled item (already known, unchanged items are skipped)."""
        _row, connector, siblings = await self.store.load(connector_id)
        zone = self.settings.source_time_zone
        start, end = domain.local_range(date_from, date_to, zone)
        found = await self.lister.read_sitemap(
            connector,
            report,
            etag=None,
            last_modified=None,
            children_since=start,
            max_children=max(self.settings.max_child_sitemaps, 1000),
        )
        assert found is not None  # no validators sent: never 304
        selected = [i for i in found.items if domain.in_range(i.date, start, end, zone)]
        report.counts.out_of_range += len(found.items) - len(selected)
        limit = self.settings.max_backfill_urls
        if len(selected) > limit:
            report.warn(f"{len(selected)} addresses in range; the first {limit} are backfilled")
            selected = selected[:limit]
        document = {"url": connector.url, "final_url": found.response.final_url, "backfill": True}
        p = self._pass(connector, siblings, Work("backfill", range_utc=(start, end)))
        for offset in range(0, len(selected), BACKFILL_BATCH):
            if cancelled is not None and await cancelled():
                report.warn("cancelled by an operator")
                return
            batch = selected[offset : offset + BACKFILL_BATCH]
            await self.process(p, batch, None, report, document)
