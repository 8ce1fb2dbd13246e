"""Operators' pull actions (feed configuration, fetch now, pause and resume, backfill, held
items) and integration health. Each loads state, asks domain.py, and commits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleContent
from portal_ingest import domain as ingest_domain
from portal_ingest import repository as ingest_repo
from portal_ingest.pull import domain
from portal_ingest.pull import repository as repo
from portal_ingest.pull.addresses import UrlRefused, check_url
from portal_ingest.pull.domain import (
    Breaker,
    Connector,
    ConnectorHealth,
    ConnectorKind,
    ItemState,
    Outcome,
)
from portal_ingest.pull.parse import FeedItem
from portal_ingest.pull.poller import Poller, PollReport
from portal_ingest.pull.scheduler import Scheduler
from portal_ingest.pull.schemas import (
    BackfillIn,
    BackfillOut,
    BreakerOut,
    ConnectorHealthOut,
    ConnectorOut,
    DayCount,
    FeedsIn,
    FeedsOut,
    FetchNowOut,
    HealthOverviewOut,
    HealthTotals,
    ItemOut,
    ItemPage,
    ItemProblemOut,
    PollOut,
    ProblemOut,
    PullStateOut,
    SectionHealthOut,
    SourceHealthOut,
    SourceHealthSummaryOut,
    WarningOut,
)
from portal_ingest.settings import Settings
from portal_ingest.usecases import RefusalKind, Refused
from portal_runtime.logs import get_logger

log = get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]


class PullConflict(Exception):
    """The action does not fit the source's state (no feeds, item not held, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidConfig(Exception):
    """A configuration the source's scope or the fetch rules do not allow; names the field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


def utcnow() -> datetime:
    return datetime.now(UTC)


def _connector_out(row: repo.ConnectorRow) -> ConnectorOut:
    return ConnectorOut(
        id=row.id,
        kind=ConnectorKind(row.kind),
        url=row.url,
        categories=row.categories,
        section=row.section,
        interval_s=row.interval_s,
        fetch_full_page=row.fetch_full_page,
        retract_missing=row.retract_missing,
        enabled=row.enabled,
        lookback_days=row.lookback_days,
        next_fetch_at=row.next_fetch_at,
        last_fetch_at=row.last_fetch_at,
        last_success_at=row.last_success_at,
        last_outcome=Outcome(row.last_outcome) if row.last_outcome else None,
    )


def _poll_out(report: PollReport) -> PollOut:
    return PollOut(
        connector_id=report.connector_id,
        url=report.url,
        outcome=report.outcome.value,
        error_kind=report.error_kind.value if report.error_kind else None,
        http_status=report.http_status,
        message=report.message,
        warnings=report.warnings,
        counts=report.counts.as_dict(),
        duration_ms=report.duration_ms,
    )


def _item_out(row: repo.ItemRow) -> ItemOut:
    return ItemOut(
        id=row.id,
        external_id=row.external_id,
        article_id=row.article_id,
        connector_id=row.connector_id,
        url=row.url,
        title=row.title,
        categories=row.categories,
        section=row.section,
        state=row.state,
        reason=row.reason,
        attempts=row.attempts,
        revision=row.revision,
        published_at=row.published_at,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        missing_since=row.missing_since,
        updated_at=row.updated_at,
    )


def _backfill_out(row: repo.BackfillRow) -> BackfillOut:
    return BackfillOut(
        id=row.id,
        source=row.source,
        connector_id=row.connector_id,
        date_from=row.date_from,
        date_to=row.date_to,
        state=row.state,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=row.counts,
        last_error=row.last_error,
    )


class PullAdmin:
    def __init__(
        self,
        settings: Settings,
        sessions: Sessions,
        poller: Poller,
        scheduler: Scheduler,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.poller = poller
        self.scheduler = scheduler
        self.rng = rng or random.Random()

    async def _source(self, session: AsyncSession, code: str) -> ingest_repo.SourceRow:
        src = await ingest_repo.get_source(session, code)
        if src is None:
            raise Refused(RefusalKind.NOT_FOUND, f"unknown source '{code}'")
        return src

    # -- configuration ---------------------------------------------------------------------------

    async def get_feeds(self, code: str, released: int = 0) -> FeedsOut:
        async with self.sessions() as session:
            await self._source(session, code)
            pull = await repo.get_pull_source(session, code)
            rows = await repo.list_connectors(session, code)
        return FeedsOut(
            source=code,
            categories=pull.categories if pull else {},
            paused=pull.paused if pull else False,
            connectors=[_connector_out(r) for r in rows],
            released_held_items=released,
        )

    def _validate(self, src: ingest_repo.SourceRow, body: FeedsIn) -> None:
        allowed = set(src.sections)
        shown = ", ".join(src.sections) or "none"
        problems: list[tuple[str, str]] = []

        def check(field: str, section: str | None) -> None:
            if section is not None and section not in allowed:
                problems.append(
                    (
                        field,
                        f"section '{section}' is not allowed for source '{src.code}' "
                        f"(allowed: {shown})",
                    )
                )

        for name, section in body.categories.items():
            check(f"categories.{name}", section)
        for i, c in enumerate(body.connectors):
            for name, section in c.categories.items():
                check(f"connectors[{i}].categories.{name}", section)
            check(f"connectors[{i}].section", c.section)
            if c.interval_s < self.settings.feed_min_interval_s:
                problems.append(
                    (
                        f"connectors[{i}].interval_s",
                        f"must be at least {self.settings.feed_min_interval_s} seconds",
                    )
                )
            try:
                check_url(c.url, self.poller.fetcher.policy)
            except UrlRefused as exc:
                problems.append((f"connectors[{i}].url", str(exc)))
        if problems:
            raise InvalidConfig(problems)

    async def put_feeds(self, code: str, body: FeedsIn) -> FeedsOut:
        now = utcnow()
        async with self.sessions.begin() as session:
            src = await self._source(session, code)
            self._validate(src, body)
            await repo.ensure_pull_source(session, code)
            await repo.set_source_categories(session, code, dict(body.categories))
            await repo.replace_connectors(
                session,
                code,
                [
                    {
                        "kind": c.kind.value,
                        "url": c.url,
                        "categories": dict(c.categories),
                        "section": c.section,
                        "interval_s": c.interval_s,
                        "fetch_full_page": c.fetch_full_page,
                        "retract_missing": c.retract_missing,
                        "enabled": c.enabled,
                        "lookback_days": c.lookback_days,
                        "next_fetch_at": domain.first_poll_at(now, c.interval_s, self.rng),
                    }
                    for c in body.connectors
                ],
            )
        log.info("feeds_configured", source=code, connectors=len(body.connectors))
        released = await self.recheck_held(code)
        self.scheduler.wake()
        return await self.get_feeds(code, released)

    async def recheck_held(self, code: str, limit: int = 1000) -> int:
        """Held items whose categories the mapping now covers go to the pipeline."""
        async with self.sessions() as session:
            held = await repo.list_items(
                session, code, states=[ItemState.HELD], before_id=None, limit=limit
            )
            if not held:
                return 0
            pull = await repo.get_pull_source(session, code)
            rows = {r.id: r for r in await repo.list_connectors(session, code)}
        released = 0
        for item in held:
            connector = self._connector_for(item, rows, pull)
            report = PollReport(connector.id, code, connector.url, "mapping", utcnow())
            try:
                if await self.poller.recheck_held(connector, item, report):
                    released += 1
            except Exception:
                log.exception("held_recheck_failed", source=code, item=item.id)
        return released

    def _connector_for(
        self,
        item: repo.ItemRow,
        rows: dict[int, repo.ConnectorRow],
        pull: repo.PullSourceRow | None,
    ) -> Connector:
        row = rows.get(item.connector_id) if item.connector_id is not None else None
        if row is not None:
            return Poller.connector(row, pull.categories if pull else {})
        # Its connector was removed: the source-wide mapping still applies.
        return Connector(
            id=item.connector_id or 0,
            source=item.source,
            kind=ConnectorKind.RSS,
            url=item.url or "",
            categories=domain.merged_mapping(pull.categories if pull else {}, {}),
            section=None,
            interval_s=0,
            fetch_full_page=False,
            retract_missing=False,
            lookback_days=1,
        )

    # -- operations ------------------------------------------------------------------------------

    async def _pull_state(self, code: str) -> PullStateOut:
        async with self.sessions() as session:
            pull = await repo.get_pull_source(session, code)
        assert pull is not None
        return PullStateOut(
            source=code,
            paused=pull.paused,
            paused_at=pull.paused_at,
            paused_reason=pull.paused_reason,
        )

    async def pause(self, code: str, reason: str | None) -> PullStateOut:
        async with self.sessions.begin() as session:
            await self._source(session, code)
            await repo.ensure_pull_source(session, code)
            await repo.set_paused(session, code, paused=True, reason=reason, now=utcnow())
        log.info("source_paused", source=code, reason=reason)
        return await self._pull_state(code)

    async def resume(self, code: str) -> PullStateOut:
        now = utcnow()
        async with self.sessions.begin() as session:
            await self._source(session, code)
            await repo.ensure_pull_source(session, code)
            await repo.set_paused(session, code, paused=False, reason=None, now=now)
            await repo.schedule_now(session, code, now)
        log.info("source_resumed", source=code)
        self.scheduler.wake()
        return await self._pull_state(code)

    async def fetch_now(self, code: str, wait_s: float | None = None) -> FetchNowOut:
        """Poll every enabled connector of the source now (schedule, pause and breaker aside:
        an operator asked), and answer with the results."""
        async with self.sessions.begin() as session:
            src = await self._source(session, code)
            if not src.active:
                raise PullConflict(f"source '{code}' is inactive")
            free, busy = await repo.claim_source(
                session, code, now=utcnow(), lease_s=self.settings.feed_lease_s
            )
        if not free and not busy:
            raise PullConflict(f"source '{code}' has no enabled feed connector")
        tasks = {row.id: self.scheduler.spawn(row.id, "manual") for row in free}
        if tasks:
            await asyncio.wait(
                tasks.values(),
                timeout=wait_s if wait_s is not None else self.settings.fetch_now_wait_s,
            )
        polls: list[PollOut] = []
        for row in free:
            task = tasks[row.id]
            if not task.done():
                polls.append(PollOut(connector_id=row.id, url=row.url, outcome="running"))
            elif task.cancelled() or task.exception() is not None:
                polls.append(
                    PollOut(
                        connector_id=row.id,
                        url=row.url,
                        outcome="error",
                        error_kind="internal",
                        message="the poll was interrupted",
                    )
                )
            else:
                polls.append(_poll_out(task.result()))
        polls.extend(PollOut(connector_id=r.id, url=r.url, outcome="busy") for r in busy)
        finished = all(p.outcome not in ("running", "busy") for p in polls)
        return FetchNowOut(source=code, finished=finished, polls=polls)

    async def request_backfill(self, code: str, body: BackfillIn) -> BackfillOut:
        async with self.sessions.begin() as session:
            await self._source(session, code)
            today = await repo.local_today(session, self.settings.source_time_zone)
            if body.date_from > today:
                raise InvalidConfig([("from", f"is after today ({today.isoformat()})")])
            connectors = await repo.list_connectors(session, code)
            sitemaps = [c for c in connectors if ConnectorKind(c.kind).is_sitemap]
            if body.connector_id is not None:
                match = [c for c in connectors if c.id == body.connector_id]
                if not match:
                    raise InvalidConfig(
                        [("connector_id", f"source '{code}' has no connector {body.connector_id}")]
                    )
                if not ConnectorKind(match[0].kind).is_sitemap:
                    raise InvalidConfig(
                        [("connector_id", "a backfill reads a sitemap or news-sitemap connector")]
                    )
            elif not sitemaps:
                raise PullConflict(f"source '{code}' has no sitemap connector to backfill from")
            row = await repo.insert_backfill(
                session,
                source=code,
                connector_id=body.connector_id,
                date_from=body.date_from,
                date_to=min(body.date_to, today),
            )
        log.info("backfill_requested", source=code, backfill=row.id)
        self.scheduler.wake()
        return _backfill_out(row)

    async def list_backfills(self, code: str) -> list[BackfillOut]:
        async with self.sessions() as session:
            await self._source(session, code)
            return [_backfill_out(r) for r in await repo.list_backfills(session, code, 100)]

    async def get_backfill(self, code: str, backfill_id: int) -> BackfillOut:
        async with self.sessions() as session:
            await self._source(session, code)
            row = await repo.get_backfill(session, code, backfill_id)
        if row is None:
            raise Refused(RefusalKind.NOT_FOUND, f"source '{code}' has no backfill {backfill_id}")
        return _backfill_out(row)

    async def cancel_backfill(self, code: str, backfill_id: int) -> BackfillOut:
        async with self.sessions.begin() as session:
            await self._source(session, code)
            if await repo.get_backfill(session, code, backfill_id) is None:
                raise Refused(
                    RefusalKind.NOT_FOUND, f"source '{code}' has no backfill {backfill_id}"
                )
            await repo.cancel_backfill(session, code, backfill_id)
        return await self.get_backfill(code, backfill_id)

    # -- items -----------------------------------------------------------------------------------

    async def list_items(
        self, code: str, states: Sequence[ItemState], before_id: int | None, limit: int
    ) -> ItemPage:
        async with self.sessions() as session:
            await self._source(session, code)
            rows = await repo.list_items(
                session, code, states=states or list(ItemState), before_id=before_id, limit=limit
            )
        return ItemPage(
            items=[_item_out(r) for r in rows],
            next_cursor=ingest_domain.encode_cursor(rows[-1].id) if len(rows) == limit else None,
        )

    async def release(self, code: str, item_id: int, section: str) -> ItemOut:
        """Send a held item to ``section`` (an operator's decision)."""
        async with self.sessions() as session:
            src = await self._source(session, code)
            item = await repo.get_item_by_id(session, code, item_id)
            pull = await repo.get_pull_source(session, code)
            rows = {r.id: r for r in await repo.list_connectors(session, code)}
        if item is None:
            raise Refused(RefusalKind.NOT_FOUND, f"source '{code}' has no feed item {item_id}")
        if item.state is not ItemState.HELD or item.held_content is None or item.held_raw is None:
            raise PullConflict(f"feed item {item_id} is {item.state.value}, not held")
        if section not in src.sections:
            raise InvalidConfig(
                [
                    (
                        "section",
                        f"section '{section}' is not allowed for source '{code}' "
                        f"(allowed: {', '.join(src.sections) or 'none'})",
                    )
                ]
            )
        connector = self._connector_for(item, rows, pull)
        content = ArticleContent.model_validate({**item.held_content, "section": section})
        report = PollReport(connector.id, code, connector.url, "release", utcnow())
        feed_item = FeedItem(key=item.item_key, url=item.url, published_at=item.published_at)
        state = await self.poller.submit(
            connector,
            feed_item,
            item.key_hash,
            item,
            content,
            item.held_raw,
            report,
            state=ItemState.RELEASED,
        )
        if state is ItemState.REFUSED:
            raise Refused(
                RefusalKind.FORBIDDEN, report.warnings[-1] if report.warnings else "refused"
            )
        log.info("held_item_released", source=code, item=item_id, section=section)
        async with self.sessions() as session:
            released = await repo.get_item_by_id(session, code, item_id)
        assert released is not None
        return _item_out(released)


# -- integration health -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """Everything health needs about the sources, read in a few grouped queries."""

    sources: list[ingest_repo.SourceRow]
    pull: dict[str, repo.PullSourceRow]
    connectors: dict[str, list[repo.ConnectorRow]]
    stats: dict[str, tuple[int, int]]
    last_errors: dict[str, repo.FetchLogRow]
    arrivals: dict[str, tuple[datetime | None, datetime | None]]
    items: dict[str, dict[str, int]]
    partner_errors: dict[str, int]
    per_day: dict[str, dict[tuple[str | None, date], int]]
    days: list[date]


def _problem(row: repo.FetchLogRow) -> ProblemOut:
    return ProblemOut(
        at=row.started_at,
        connector_id=row.connector_id,
        url=row.url,
        kind=row.error_kind,
        http_status=row.http_status,
        message=row.message,
    )


def _connector_problem(row: repo.ConnectorRow) -> ProblemOut | None:
    if row.last_error_at is None:
        return None
    return ProblemOut(
        at=row.last_error_at,
        connector_id=row.id,
        url=row.url,
        kind=row.last_error_kind,
        http_status=row.last_http_status,
        message=row.last_error,
    )


class PullHealth:
    def __init__(self, settings: Settings, sessions: Sessions) -> None:
        self.settings = settings
        self.sessions = sessions

    async def _facts(self, code: str | None, days: int, window_hours: int) -> _Facts:
        now = utcnow()
        since = now - timedelta(hours=window_hours)
        zone = self.settings.source_time_zone
        async with self.sessions() as session:
            today = await repo.local_today(session, zone)
            day_list = domain.local_days(today, days)
            start, _ = domain.local_range(day_list[0], today, zone)
            if code is not None:
                src = await ingest_repo.get_source(session, code)
                if src is None:
                    raise Refused(RefusalKind.NOT_FOUND, f"unknown source '{code}'")
                srcs = [src]
                pull_row = await repo.get_pull_source(session, code)
                pull = {code: pull_row} if pull_row else {}
                connectors = {code: await repo.list_connectors(session, code)}
                last_errors = {e.source: e for e in await repo.recent_errors(session, code, 1)}
                arrivals = {code: await repo.arrivals_of(session, code)}
            else:
                srcs = await ingest_repo.list_sources(session)
                pull = await repo.list_pull_sources(session)
                connectors = {}
                for row in await repo.list_all_connectors(session):
                    connectors.setdefault(row.source, []).append(row)
                last_errors = await repo.last_errors(session)
                arrivals = await repo.arrivals(session)
            stats = await repo.fetch_stats(session, since, code)
            items = await repo.item_state_counts(session, code)
            partner = await repo.partner_error_counts(session, since, code)
            per_day = await repo.items_per_section_day(session, since=start, zone=zone, source=code)
        return _Facts(
            srcs, pull, connectors, stats, last_errors, arrivals, items, partner, per_day, day_list
        )

    def _summary(
        self, facts: _Facts, src: ingest_repo.SourceRow, window_hours: int, now: datetime
    ) -> tuple[dict[str, object], list[domain.SectionSeries]]:
        pull = facts.pull.get(src.code)
        breaker = pull.breaker if pull else Breaker()
        connectors = facts.connectors.get(src.code, [])
        fetches, errors = facts.stats.get(src.code, (0, 0))
        rate = domain.error_rate(fetches, errors)
        state = domain.source_state(
            active=src.active,
            paused=bool(pull and pull.paused),
            breaker=breaker,
            now=now,
            connectors=[
                ConnectorHealth(
                    c.enabled,
                    Outcome(c.last_outcome) if c.last_outcome else None,
                    bool(c.last_warnings),
                )
                for c in connectors
            ],
            error_rate=rate,
        )
        last_error = facts.last_errors.get(src.code)
        first, newest = facts.arrivals.get(src.code, (None, None))
        items = facts.items.get(src.code, {})
        series = domain.section_series(
            facts.per_day.get(src.code, {}),
            days=facts.days,
            sections=list(src.sections),
            standard=self.settings.standard_sections,
        )
        summary: dict[str, object] = {
            "source": src.code,
            "name": src.name,
            "kind": src.kind,
            "active": src.active,
            "state": state,
            "mode": "pull" if connectors else "push",
            "paused": bool(pull and pull.paused),
            "breaker": BreakerOut(
                state=breaker.state.value,
                consecutive_failures=breaker.failures,
                open_until=breaker.open_until,
            ),
            "last_fetch_at": max(
                (c.last_fetch_at for c in connectors if c.last_fetch_at), default=None
            ),
            "last_success_at": max(
                (c.last_success_at for c in connectors if c.last_success_at), default=None
            ),
            "last_new_item_at": first,
            "last_item_at": newest,
            "window_hours": window_hours,
            "fetches": fetches,
            "errors": errors,
            "error_rate": rate,
            "last_error": _problem(last_error) if last_error else None,
            "warnings": sum(len(c.last_warnings) for c in connectors),
            "held_items": items.get(ItemState.HELD.value, 0),
            "failed_items": items.get(ItemState.FAILED.value, 0),
            "partner_errors": facts.partner_errors.get(src.code, 0),
            "items_in_days": sum(s.total for s in series),
            "standard_sections_without_items": [
                s.section for s in series if s.standard and s.total == 0 and s.section
            ],
        }
        return summary, series

    async def overview(self, *, days: int, window_hours: int) -> HealthOverviewOut:
        facts = await self._facts(None, days, window_hours)
        now = utcnow()
        summaries = [
            SourceHealthSummaryOut.model_validate(self._summary(facts, src, window_hours, now)[0])
            for src in facts.sources
        ]
        by_state: dict[str, int] = {}
        for s in summaries:
            by_state[s.state.value] = by_state.get(s.state.value, 0) + 1
        return HealthOverviewOut(
            generated_at=now,
            window_hours=window_hours,
            days=days,
            totals=HealthTotals(
                sources=len(summaries),
                pull_sources=sum(1 for s in summaries if s.mode == "pull"),
                by_state=by_state,
                held_items=sum(s.held_items for s in summaries),
                failed_items=sum(s.failed_items for s in summaries),
            ),
            sources=summaries,
        )

    async def source(self, code: str, *, days: int, window_hours: int) -> SourceHealthOut:
        facts = await self._facts(code, days, window_hours)
        now = utcnow()
        src = facts.sources[0]
        summary, series = self._summary(facts, src, window_hours, now)
        pull = facts.pull.get(code)
        connectors = facts.connectors.get(code, [])
        async with self.sessions() as session:
            recent = await repo.recent_errors(session, code, 20)
            problems = await repo.list_items(
                session,
                code,
                states=[ItemState.FAILED, ItemState.REFUSED, ItemState.HELD],
                before_id=None,
                limit=20,
            )
        return SourceHealthOut.model_validate(
            {
                **summary,
                "paused_at": pull.paused_at if pull else None,
                "paused_reason": pull.paused_reason if pull else None,
                "days": days,
                "items": facts.items.get(code, {}),
                "recent_errors": [_problem(r) for r in recent],
                "warning_list": [
                    WarningOut(connector_id=c.id, url=c.url, message=w)
                    for c in connectors
                    for w in c.last_warnings
                ],
                "item_problems": [
                    ItemProblemOut(
                        id=i.id,
                        url=i.url,
                        title=i.title,
                        state=i.state,
                        reason=i.reason,
                        attempts=i.attempts,
                        updated_at=i.updated_at,
                    )
                    for i in problems
                ],
                "connectors": [
                    ConnectorHealthOut(
                        id=c.id,
                        kind=ConnectorKind(c.kind),
                        url=c.url,
                        enabled=c.enabled,
                        interval_s=c.interval_s,
                        next_fetch_at=c.next_fetch_at,
                        last_fetch_at=c.last_fetch_at,
                        last_success_at=c.last_success_at,
                        last_outcome=Outcome(c.last_outcome) if c.last_outcome else None,
                        last_http_status=c.last_http_status,
                        consecutive_failures=c.consecutive_failures,
                        conditional=bool(c.etag or c.last_modified),
                        last_error=_connector_problem(c),
                        warnings=c.last_warnings,
                    )
                    for c in connectors
                ],
                "sections": [
                    SectionHealthOut(
                        section=s.section,
                        standard=s.standard,
                        total=s.total,
                        days=[DayCount(date=d, count=n) for d, n in s.per_day],
                    )
                    for s in series
                ],
            }
        )
