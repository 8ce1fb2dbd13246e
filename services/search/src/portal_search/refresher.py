"""Refreshes of the article index driven by the consumer's writes.

A written document is searchable after the index's next refresh, and each refresh writes a
small segment that merges later rewrite: OpenSearch's CPU per article grows with the refreshes
per second. A periodic interval refreshes at a fixed pace whatever the writes; here a write
asks for a refresh, which runs at once when the last one is at least ``min_gap_s`` old and
otherwise when it is. An article written after a quiet spell is searchable as soon as its
``_bulk`` returns; under load one refresh covers every batch written in ``min_gap_s``.

The index keeps a long periodic interval as a safety net: a refresh that fails (OpenSearch
away) leaves the article visible at the next successful one, or the interval's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from portal_runtime.logs import get_logger

log = get_logger(__name__)


class Refresher:
    def __init__(
        self,
        refresh: Callable[[], Awaitable[object]],
        *,
        min_gap_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh = refresh
        self.min_gap_s = min_gap_s
        self._clock = clock
        self._dirty = asyncio.Event()
        self._last = float("-inf")  # when the last refresh was sent
        self.refreshes = 0

    def written(self) -> None:
        """Documents were written: make them searchable soon."""
        self._dirty.set()

    async def run(self) -> None:
        """Refresh after writes, never twice within ``min_gap_s``; runs until cancelled."""
        while True:
            await self._dirty.wait()
            wait = self._last + self.min_gap_s - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            # Cleared before the request: a write acknowledged during it asks for another.
            self._dirty.clear()
            self._last = self._clock()
            try:
                await self._refresh()
                self.refreshes += 1
            except Exception as exc:  # OpenSearch away: retried after the gap
                log.warning("search_refresh_failed", error=repr(exc))
                self._dirty.set()
