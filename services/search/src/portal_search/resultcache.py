"""A short-lived cache of search answers, so popular searches do not all reach OpenSearch.

Searches are the costliest requests of the portal (scoring, facets and highlighting in
OpenSearch), and readers repeat the same few. Each answer (the response bytes) is kept for
``ttl_s`` per OpenSearch request body, i.e. per normalised search: 'Hà  Nội' and 'Hà Nội' share one.

The same rules keep the ready-to-send response of each request target (path and raw query),
which the service's front answers before routing (``Service.create_app(stored_responses=...)``):
a popular search repeated costs a dict lookup, not parameter validation and query building.

When an answer is missing (first asked, or expired), the readers asking for it at the same time
share one OpenSearch request (``answer``): a popular search expiring under load costs one
query, not one per waiting reader.

Freshness: search already trails publication (Kafka, then OpenSearch's refresh of about a
second). This instance's own index writes drop every answer at once, and for ``settle_s``
afterwards nothing is stored (the write only becomes searchable at the next refresh). Writes
of another instance reach this one's answers within ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from portal_runtime.httpcache import StoredResponse

V = TypeVar("V")


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
        self._responses: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[bytes]] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_entries > 0

    def get(self, key: str) -> bytes | None:
        """The answer of a normalised search (the OpenSearch request body)."""
        return self._get(self._entries, key)

    async def answer(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The kept answer of ``key``, else ``compute()``'s, computed once for every reader
        asking meanwhile (a reader that goes away does not cancel it for the others)."""
        found = self.get(key)
        if found is not None:
            return found
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._compute(key, self.token(), compute))
            task.add_done_callback(_retrieved)
            self._pending[key] = task
        return await asyncio.shield(task)

    async def _compute(
        self, key: str, token: int, compute: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        try:
            body = await compute()
            self.put(key, token, body)
            return body
        finally:
            self._pending.pop(key, None)

    def response(self, target: str) -> StoredResponse | None:
        """The response kept for a request target."""
        return self._get(self._responses, target)

    def _get(self, entries: OrderedDict[str, tuple[float, V]], key: str) -> V | None:
        found = entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self.clock():
            del entries[key]
            return None
        entries.move_to_end(key)
        return value

    def token(self) -> int:
        """Take it before asking OpenSearch; ``put`` keeps nothing if the index changed since."""
        return self.generation

    def put(self, key: str, token: int, body: bytes) -> None:
        self._put(self._entries, key, token, body)

    def keep_response(self, target: str, token: int, response: StoredResponse) -> None:
        self._put(self._responses, target, token, response)

    def _put(
        self, entries: OrderedDict[str, tuple[float, V]], key: str, token: int, value: V
    ) -> None:
        now = self.clock()
        if not self.enabled or token != self.generation or now < self._quiet_until:
            return
        entries[key] = (now + self.ttl_s, value)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def changed(self) -> None:
        """This instance wrote to the index: drop every answer, store none until it settles."""
        self.generation += 1
        self._entries.clear()
        self._responses.clear()
        self._quiet_until = self.clock() + self.settle_s

    def __len__(self) -> int:
        return len(self._entries)


def _retrieved(task: asyncio.Task[bytes]) -> None:
    # Every waiter may have gone: the error is theirs to see, not the event loop's log.
    if not task.cancelled():
        task.exception()
