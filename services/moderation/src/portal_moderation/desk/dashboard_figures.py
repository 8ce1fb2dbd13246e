"""The integration dashboard's figures: every query on its own connection (in parallel), and
shared for a few seconds by everyone looking at the same period and scope (the page refreshes
itself, so many open dashboards cost one set of queries)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_moderation import reports
from portal_moderation import repository as repo
from portal_runtime.clock import utcnow

CACHE_S = 10.0
MAX_ENTRIES = 256
NAMES = ("total", "by_source", "latency", "backlog", "days", "reasons", "errors", "recent_errors")


class DashboardFigures:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float = CACHE_S) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}

    async def get(
        self, period_code: str, span: timedelta | None, scope: str | None
    ) -> dict[str, Any]:
        """``now``, ``period`` and the figures named in ``NAMES`` for one period and scope."""
        key = (period_code, scope)
        clock = asyncio.get_running_loop().time()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > clock:
            return hit[1]
        figures = await self._query(span, scope)
        if len(self._cache) > MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (clock + self.ttl_s, figures)
        return figures

    async def _query(self, span: timedelta | None, scope: str | None) -> dict[str, Any]:
        now = utcnow()
        period = reports.Period(since=now - span if span else None, until=now)

        async def run(query: Any, *args: Any) -> Any:
            async with self.sessions() as session:
                return await query(session, *args)

        results = await asyncio.gather(
            run(reports.totals, period, scope),
            run(reports.per_source, period, scope),
            run(reports.latency, period, scope),
            run(reports.backlog_by_age, scope, now),
            run(reports.daily, period, scope),
            run(reports.rejection_reasons, period, scope),
            run(reports.error_types, period, scope),
            run(lambda session: repo.list_dead_letters(session, source=scope, limit=10)),
        )
        return {"now": now, "period": period, **dict(zip(NAMES, results, strict=True))}
