"""Server-side cache of the public representations, so repeated reads skip the database.

Every public GET renders bytes from the store; this keeps them as ready-to-send responses
(``StoredResponse``: the bytes with every header, ETag, Last-Modified, Cache-Control and
surrogate keys) per request target, in this process's memory, and the service's front answers
a GET from here before routing (``Service.create_app(stored_responses=pages.get)``). Entries
belong to a *generation*: any change of the published store starts a new one, so a read after
a change never gets an entry rendered before it.

How a change reaches every instance:

* this process's own writes (the consumer, the admin API) bump the generation when they commit,
  and no entry is served or stored while their COMMIT is in flight (``writing``): once the
  commit is visible to anyone, no entry older than it is served here;
* other instances' writes (and rebuilds, or anything else that touches ``changes``) arrive as a
  PostgreSQL notification: a trigger on ``changes`` (every public change bumps a row there)
  sends ``NOTIFY publishing_changes``, delivered at commit to every listening instance. Their
  caches lag a commit by the delivery time of the notification (milliseconds);
* while the listening connection is down the cache is bypassed (every read goes to the
  database) and it starts empty once it is back: a lost notification never leaves a stale page.

Entries also expire after ``ttl_s`` (the news sitemap changes as time passes, not only with the
store) and the least recently used ones are dropped beyond ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from portal_runtime.httpcache import StoredResponse
from portal_runtime.logs import get_logger

log = get_logger(__name__)

CHANNEL = "publishing_changes"


@dataclass(frozen=True, slots=True)
class Entry:
    response: StoredResponse
    expires: float  # on the cache's clock
    size: int


class PageCache:
    def __init__(
        self, *, ttl_s: float, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_bytes = max_bytes
        self.generation = 0
        # False until the notification listener runs (and again while it is down); a cache
        # built without one (a unit test, a single-process tool) can set it with ``listening``.
        self.live = False
        self._writes_committing = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_bytes > 0

    def _usable(self) -> bool:
        return self.enabled and self.live and self._writes_committing == 0

    # --- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> StoredResponse | None:
        if not self._usable():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.response

    def token(self) -> int | None:
        """The generation a render starts in (None: do not store it). Take it before reading."""
        return self.generation if self._usable() else None

    def put(self, key: str, token: int | None, response: StoredResponse) -> None:
        # A change since the render started may be missing from it: keep nothing.
        if token is None or token != self.generation or not self._usable():
            return
        entry = Entry(response, self.clock() + self.ttl_s, response.size + len(key))
        if entry.size > self.max_bytes // 8:
            return  # one huge document (a full sitemap) must not evict everything else
        self._drop(key)
        self._entries[key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size

    def __len__(self) -> int:
        return len(self._entries)

    # --- changes ---------------------------------------------------------------------------

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._bytes = 0

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Wrap a COMMIT of this process that changes public data (see the module's doc)."""
        self._writes_committing += 1
        try:
            yield
        finally:
            self._writes_committing -= 1
            self.invalidate()

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        self.invalidate()
        self.live = True
        try:
            yield
        finally:
            self.live = False
            self.invalidate()

    async def run_listener(self, dsn: str, *, check_every_s: float = 5.0) -> None:
        """Listen for changes of other writers for ever (a background task of the service)."""
        if not self.enabled:
            return
        backoff = 0.5
        while True:
            try:
                await self._listen(dsn, check_every_s)
                log.warning("page_cache_listener_lost", retry_in_s=backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("page_cache_listener_down", error=repr(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _listen(self, dsn: str, check_every_s: float) -> None:
        """Serve from the cache while one listening connection lives."""
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            with self.listening():
                log.info("page_cache_listening", channel=CHANNEL)
                while not lost.is_set():
                    # A dead peer may never close the socket: ask now and then.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(check_every_s):
                            await lost.wait()
                    if not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=check_every_s)
        finally:
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), timeout=2)

    def _notified(self, *_: Any) -> None:
        self.invalidate()


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL of the settings as a plain libpq URL for asyncpg."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
