"""What a poll reads and writes in ingest's database: the connector and the items it knows,
each item's row, the missing counts, the connector's schedule, the source's circuit breaker
and the fetch log. One short transaction per write (a poll is long: no transaction spans it)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_ingest.pull import domain
from portal_ingest.pull import repository as repo
from portal_ingest.pull.decide import fetch_log_values
from portal_ingest.pull.domain import BreakerPolicy, Connector, ConnectorKind
from portal_ingest.pull.report import PollReport
from portal_runtime.logs import get_logger

log = get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]


def connector_of(row: repo.ConnectorRow, source_categories: dict[str, str]) -> Connector:
    """A connector's configuration as the rules need it (its mapping over the source's)."""
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


class PollStore:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def load(self, connector_id: int) -> tuple[repo.ConnectorRow, Connector, list[int]]:
        """The connector's row, its configuration, and the source's live connectors."""
        async with self.sessions() as session:
            found = await repo.get_connector_for_poll(session, connector_id)
        if found is None:
            raise LookupError(f"connector {connector_id} no longer exists")
        row, source_categories, siblings = found
        return row, connector_of(row, source_categories), siblings

    async def known_items(self, source: str, digests: list[str]) -> dict[str, repo.ItemRow]:
        async with self.sessions() as session:
            return await repo.get_items(session, source, digests)

    async def has_retry_work(self, connector_id: int, max_attempts: int) -> bool:
        """Whether items failed before and are worth another try (the listing may be as before)."""
        async with self.sessions() as session:
            return await repo.count_retry_work(session, connector_id, max_attempts) > 0

    async def save_item(self, values: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await repo.upsert_item(session, values)

    async def update_item(self, item: repo.ItemRow, values: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await repo.update_item(session, item.source, item.key_hash, values)

    async def mark_seen(self, source: str, digests: list[str], now: datetime) -> None:
        async with self.sessions.begin() as session:
            await repo.mark_seen(session, source, digests, now)

    async def missing(
        self,
        connector_id: int,
        present: Collection[str],
        *,
        newer_than: datetime | None = None,
        flagged_only: bool = False,
    ) -> list[repo.ItemRow]:
        """Items the connector listed before and does not list now."""
        async with self.sessions() as session:
            return await repo.listed_items_missing(
                session, connector_id, present, newer_than=newer_than, flagged_only=flagged_only
            )

    async def release(self, connector_id: int) -> None:
        """Give up the connector's lease (a poll cut short): another poll may start at once."""
        try:
            async with self.sessions.begin() as session:
                await repo.release_lease(session, connector_id)
        except Exception:
            log.warning("lease_release_failed", connector_id=connector_id, exc_info=True)

    async def record_poll(
        self,
        row: repo.ConnectorRow,
        report: PollReport,
        values: dict[str, Any],
        *,
        now: datetime,
        policy: BreakerPolicy,
    ) -> None:
        """The connector after the poll, the source's circuit breaker, and the fetch log."""
        async with self.sessions.begin() as session:
            pull = await repo.get_pull_source(session, row.source, for_update=True)
            if pull is None:
                await repo.ensure_pull_source(session, row.source)
                pull = await repo.get_pull_source(session, row.source, for_update=True)
            assert pull is not None
            breaker = domain.breaker_after(
                pull.breaker,
                success=report.outcome is not domain.Outcome.ERROR,
                counts=domain.counts_for_breaker(report.error_kind, report.http_status),
                now=now,
                policy=policy,
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
            await repo.insert_fetch_log(session, fetch_log_values(row, report))
