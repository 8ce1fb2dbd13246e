"""Integration health per source, for operators and the editors' dashboard: state (healthy,
degraded, failing, paused, ...), fetches and errors in a window, the circuit breaker, what
arrived on any channel, held and failed items, partner errors, and items per section and day
(standard sections that receive nothing stand out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_ingest import repository as ingest_repo
from portal_ingest.pull import domain
from portal_ingest.pull import health_queries as queries
from portal_ingest.pull import repository as repo
from portal_ingest.pull.domain import Breaker, ConnectorHealth, ItemState, Outcome
from portal_ingest.pull.schemas import (
    BreakerOut,
    ConnectorHealthOut,
    DayCount,
    HealthOverviewOut,
    HealthTotals,
    ItemProblemOut,
    ProblemOut,
    SectionHealthOut,
    SourceHealthOut,
    SourceHealthSummaryOut,
    WarningOut,
)
from portal_ingest.settings import Settings
from portal_ingest.usecases import RefusalKind, Refused
from portal_runtime.clock import utcnow

Sessions = async_sessionmaker[AsyncSession]


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
                last_errors = {e.source: e for e in await queries.recent_errors(session, code, 1)}
                arrivals = {code: await queries.arrivals_of(session, code)}
            else:
                srcs = await ingest_repo.list_sources(session)
                pull = await repo.list_pull_sources(session)
                connectors = {}
                for row in await repo.list_all_connectors(session):
                    connectors.setdefault(row.source, []).append(row)
                last_errors = await queries.last_errors(session)
                arrivals = await queries.arrivals(session)
            stats = await queries.fetch_stats(session, since, code)
            items = await queries.item_state_counts(session, code)
            partner = await queries.partner_error_counts(session, since, code)
            per_day = await queries.items_per_section_day(
                session, since=start, zone=zone, source=code
            )
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
            recent = await queries.recent_errors(session, code, 20)
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
                "item_problems": [ItemProblemOut.model_validate(i) for i in problems],
                "connectors": [
                    ConnectorHealthOut.model_validate(
                        {
                            **asdict(c),
                            "conditional": bool(c.etag or c.last_modified),
                            "last_error": _connector_problem(c),
                            "warnings": c.last_warnings,
                        }
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
