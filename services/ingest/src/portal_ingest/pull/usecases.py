"""Operators' pull actions (feed configuration, fetch now, pause and resume, backfill, held
items) and integration health. Each loads state, asks domain.py, and commits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import ArticleContent
from portal_ingest import domain as ingest_domain
from portal_ingest import repository as ingest_repo
from portal_ingest.pull import backfill_repository as backfills
from portal_ingest.pull import domain
from portal_ingest.pull import repository as repo
from portal_ingest.pull.addresses import UrlRefused, check_url
from portal_ingest.pull.domain import (
    Connector,
    ConnectorKind,
    ItemState,
)
from portal_ingest.pull.parse import FeedItem
from portal_ingest.pull.poller import Poller
from portal_ingest.pull.report import PollReport
from portal_ingest.pull.scheduler import Scheduler
from portal_ingest.pull.schemas import (
    BackfillIn,
    BackfillOut,
    ConnectorOut,
    FeedsIn,
    FeedsOut,
    FetchNowOut,
    ItemOut,
    ItemPage,
    PollOut,
    PullStateOut,
)
from portal_ingest.pull.store import connector_of
from portal_ingest.settings import Settings
from portal_ingest.usecases import RefusalKind, Refused
from portal_runtime.clock import utcnow
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
            connectors=[ConnectorOut.model_validate(r) for r in rows],
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
            return connector_of(row, pull.categories if pull else {})
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
            row = await backfills.insert_backfill(
                session,
                source=code,
                connector_id=body.connector_id,
                date_from=body.date_from,
                date_to=min(body.date_to, today),
            )
        log.info("backfill_requested", source=code, backfill=row.id)
        self.scheduler.wake()
        return BackfillOut.model_validate(row)

    async def list_backfills(self, code: str) -> list[BackfillOut]:
        async with self.sessions() as session:
            await self._source(session, code)
            return [
                BackfillOut.model_validate(r)
                for r in await backfills.list_backfills(session, code, 100)
            ]

    async def get_backfill(self, code: str, backfill_id: int) -> BackfillOut:
        async with self.sessions() as session:
            await self._source(session, code)
            row = await backfills.get_backfill(session, code, backfill_id)
        if row is None:
            raise Refused(RefusalKind.NOT_FOUND, f"source '{code}' has no backfill {backfill_id}")
        return BackfillOut.model_validate(row)

    async def cancel_backfill(self, code: str, backfill_id: int) -> BackfillOut:
        async with self.sessions.begin() as session:
            await self._source(session, code)
            if await backfills.get_backfill(session, code, backfill_id) is None:
                raise Refused(
                    RefusalKind.NOT_FOUND, f"source '{code}' has no backfill {backfill_id}"
                )
            await backfills.cancel_backfill(session, code, backfill_id)
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
            items=[ItemOut.model_validate(r) for r in rows],
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
        return ItemOut.model_validate(released)
