"""Answers kept for a short while, bounded in entries, each asked once however many wait for it.

Readers who miss the same key at once share one call: when an answer expires under load, the
source is asked once, not once per reader waiting for it. A reader that goes away (a closed
connection) does not cancel the call for the others. ``forget`` drops every answer, and an
answer whose call began before it is neither kept nor shared with readers after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 2000,
        *,
        keep: Callable[[V], bool] = lambda _: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._keep = keep  # which answers are worth keeping (e.g. not "unknown")
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()  # key -> (asked, value)
        self._pending: dict[tuple[str, int], asyncio.Future[V]] = {}
        self._generation = 0  # bumped by ``forget``

    async def get(self, key: str, produce: Callable[[], Awaitable[V]]) -> V:
        """``key``'s answer, at most ``ttl_s`` old; ``produce()`` asked for it otherwise."""
        hit = self._entries.get(key)
        if hit is not None and self._clock() - hit[0] < self.ttl_s:
            return hit[1]
        if self.ttl_s <= 0:
            return await produce()
        at = (key, self._generation)
        pending = self._pending.get(at)
        if pending is None:
            pending = asyncio.ensure_future(self._produce(at, produce))
            # Its failure is each waiting reader's; retrieved here in case all of them left.
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._pending[at] = pending
        return await asyncio.shield(pending)

    def forget(self) -> None:
        """Drop every answer: the next reader of each key asks again."""
        self._generation += 1
        self._entries.clear()

    async def _produce(self, at: tuple[str, int], produce: Callable[[], Awaitable[V]]) -> V:
        key, generation = at
        try:
            asked = self._clock()
            value = await produce()
            self._entries.pop(key, None)
            if generation == self._generation and self._keep(value):
                self._entries[key] = (asked, value)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return value
        finally:
            del self._pending[at]
