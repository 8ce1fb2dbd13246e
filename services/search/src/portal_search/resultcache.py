"""A short-lived cache of search answers, so popular searches do not all reach OpenSearch.

Searches are the costliest requests of the portal (scoring, facets and highlighting in
OpenSearch), and readers repeat the same few. Each answer (the response bytes) is kept for
``ttl_s`` per OpenSearch request body, i.e. per normalised search: 'Hà  Nội' and 'Hà Nội' share one.

Freshness: search already trails publication (Kafka, then OpenSearch's refresh of about a
second). This instance's own index writes drop every answer at once, and for ``settle_s``
afterwards nothing is stored (the write only becomes searchable at the next refresh). Writes
of another instance reach this one's answers within ``ttl_s``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class ResultCache:
    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        settle_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.settle_s = settle_s
        self.clock = clock
        self.generation = 0
        self._quiet_until = 0.0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_entries > 0

    def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, body = found
        if expires <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return body

    def token(self) -> int:
        """Take it before asking OpenSearch; ``put`` keeps nothing if the index changed since."""
        return self.generation

    def put(self, key: str, token: int, body: bytes) -> None:
        now = self.clock()
        if not self.enabled or token != self.generation or now < self._quiet_until:
            return
        self._entries[key] = (now + self.ttl_s, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def changed(self) -> None:
        """This instance wrote to the index: drop every answer, store none until it settles."""
        self.generation += 1
        self._entries.clear()
        self._quiet_until = self.clock() + self.settle_s

    def __len__(self) -> int:
        return len(self._entries)
