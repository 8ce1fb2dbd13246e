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

import time
from collections.abc import Awaitable, Callable

from portal_ingest.repository import KeyGrant
from portal_runtime.memo import Memo

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
        # Unknown keys are never remembered (a key made meanwhile works at once).
        self._grants: Memo[KeyGrant | None] = Memo(
            ttl_s, max_entries, keep=lambda grant: grant is not None, clock=clock
        )

    async def get(self, key_id: str) -> KeyGrant | None:
        """The key's grant, at most ``ttl_s`` old; None for an unknown key."""
        return await self._grants.get(key_id, lambda: self._load(key_id))

    def forget(self) -> None:
        """Keys or agencies changed: read every grant again."""
        self._grants.forget()
