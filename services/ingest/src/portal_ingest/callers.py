"""Who an API key belongs to, remembered for a short while so that a partner's pushes do not each
read the key and its agency from the database.

A key's grant (its secret's hash, whether it is revoked, its agency and whether the agency may
send) is read once per ``ttl_s`` at most. Every change an operator makes to keys or agencies
through this instance forgets all grants at once, so this instance refuses a revoked key or a
deactivated agency on the next request; another instance refuses it within ``ttl_s``
(``API_KEY_CACHE_S``). The secret is checked against the hash on every request; unknown keys
are never remembered. Concurrent requests with a key that is not remembered share one read (a
read begun before a change is not shared with requests after it).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from portal_ingest.repository import KeyGrant

Loader = Callable[[str], Awaitable[KeyGrant | None]]


class KeyGrants:
    def __init__(
        self,
        load: Loader,
        ttl_s: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, KeyGrant]] = OrderedDict()
        # Bumped by ``forget``: a read that began before a change is not remembered after it.
        self._generation = 0
        # The reads under way, by key and generation: concurrent requests share one.
        self._reading: dict[tuple[str, int], asyncio.Future[KeyGrant | None]] = {}

    async def get(self, key_id: str) -> KeyGrant | None:
        """The key's grant, at most ``ttl_s`` old; None for an unknown key."""
        now = self._clock()
        entry = self._entries.get(key_id)
        if entry is not None and now < entry[0]:
            return entry[1]
        if self.ttl_s <= 0:
            return await self._load(key_id)
        at = (key_id, self._generation)
        reading = self._reading.get(at)
        if reading is None:
            reading = asyncio.ensure_future(self._read(key_id, at[1], now))
            self._reading[at] = reading
            reading.add_done_callback(lambda done: self._read_ended(at, done))
        # Shielded: a request that goes away does not cancel the others' read.
        return await asyncio.shield(reading)

    def _read_ended(self, at: tuple[str, int], done: asyncio.Future[KeyGrant | None]) -> None:
        self._reading.pop(at, None)
        if not done.cancelled():
            done.exception()  # retrieved: every request that shared it may have gone away

    async def _read(self, key_id: str, generation: int, now: float) -> KeyGrant | None:
        grant = await self._load(key_id)
        self._entries.pop(key_id, None)
        if grant is not None and generation == self._generation:
            self._entries[key_id] = (now + self.ttl_s, grant)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return grant

    def forget(self) -> None:
        """Keys or agencies changed: read every grant again."""
        self._generation += 1
        self._entries.clear()
