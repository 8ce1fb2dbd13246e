"""Live dialogue readers: PostgreSQL LISTEN/NOTIFY feeds the server-sent-event streams.

The consumer that stores a live answer appends it to ``dialogue_events`` and calls
``pg_notify`` in the same transaction, so the notification leaves only at commit, to every
instance of the service (each instance has one listening connection).

Per instance and dialogue, one :class:`Feed` reads the new events once per notification and
hands them to every reader of that dialogue (one query per event, not one per reader). A reader
first catches up from the database (from its ``Last-Event-ID``), then follows the feed; one that
fell behind what the feed still holds reads the database again, so nothing is lost. If the
listening connection drops, readers fall back to polling (through the feed) until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_engagement import repository as repo
from portal_engagement.domain import DialogueTimes, dialogue_phase
from portal_engagement.repository import LIVE_CHANNEL
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger

log = get_logger(__name__)

BATCH = 200
FEED_KEEP = 1000  # events a feed keeps for readers that are a little behind


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL of the service's database as a plain asyncpg DSN."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class LiveEvent:
    seq: int
    event: str
    data: str  # JSON, encoded once for every reader


def _event(row: dict[str, object]) -> LiveEvent:
    return LiveEvent(
        int(row["seq"]),  # type: ignore[call-overload]
        str(row["event"]),
        json.dumps(row["payload"], ensure_ascii=False),
    )


@dataclass
class Feed:
    """The new events of one dialogue, shared by this instance's readers."""

    code: str
    complete_after: int  # every event of the dialogue after this seq is in ``events``
    last_seq: int
    events: list[LiveEvent] = field(default_factory=list)
    readers: set[asyncio.Event] = field(default_factory=set)
    refreshing: bool = False
    dirty: bool = False

    def after(self, seq: int) -> list[LiveEvent] | None:
        """Events after ``seq``, or None when the feed no longer holds all of them."""
        if seq < self.complete_after:
            return None
        return [e for e in self.events if e.seq > seq]

    def add(self, events: list[LiveEvent]) -> None:
        self.events.extend(events)
        self.last_seq = events[-1].seq
        if len(self.events) > FEED_KEEP:
            dropped = self.events[: len(self.events) - FEED_KEEP]
            self.events = self.events[len(dropped) :]
            self.complete_after = dropped[-1].seq
        for reader in self.readers:
            reader.set()


class Reader:
    """One live stream's position in a dialogue."""

    def __init__(self, hub: LiveHub, feed: Feed, start: int) -> None:
        self.hub = hub
        self.feed = feed
        self.last = start
        self.woken = asyncio.Event()

    async def next_batch(self) -> list[LiveEvent]:
        self.woken.clear()
        events = self.feed.after(self.last)
        if events is None:  # catching up, or fell behind what the feed keeps
            events = await self.hub.read(self.feed.code, self.last)
        if events:
            self.last = events[-1].seq
        return events

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.woken.wait()
        if not self.woken.is_set():
            # Nothing came: look again in case a notification was missed (link down).
            self.hub.refresh(self.feed)


class LiveHub:
    def __init__(
        self,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_streams: int,
        max_streams_per_client: int,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.sessions = sessions
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client
        self._feeds: dict[str, Feed] = {}
        self._per_client: dict[str, int] = defaultdict(int)
        self._streams = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    # ---------------------------------------------------------------- admission

    def admit(self, client: str) -> str | None:
        """Why a new stream of ``client`` is refused, or None (then call ``release`` later)."""
        if self._streams >= self.max_streams:
            return "too many live readers on this server; retry shortly"
        if self._per_client[client] >= self.max_streams_per_client:
            return (
                f"too many live streams from this network address "
                f"(at most {self.max_streams_per_client})"
            )
        self._streams += 1
        self._per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self._streams -= 1
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]

    # ---------------------------------------------------------------- feeds

    async def read(self, code: str, after: int) -> list[LiveEvent]:
        async with self.sessions() as session:
            rows = await repo.dialogue_events_after(session, code, after, limit=BATCH)
        return [_event(r) for r in rows]

    @contextlib.asynccontextmanager
    async def follow(self, code: str, start: int) -> AsyncIterator[Reader]:
        feed = self._feeds.get(code)
        if feed is None:
            async with self.sessions() as session:
                newest = await repo.dialogue_last_seq(session, code)
            feed = self._feeds.get(code)  # another reader may have made it meanwhile
            if feed is None:
                feed = self._feeds[code] = Feed(code, complete_after=newest, last_seq=newest)
        reader = Reader(self, feed, start)
        feed.readers.add(reader.woken)
        try:
            yield reader
        finally:
            feed.readers.discard(reader.woken)
            if not feed.readers and self._feeds.get(code) is feed:
                del self._feeds[code]

    def refresh(self, feed: Feed) -> None:
        """Read the feed's new events (once, however many ask at the same time)."""
        if feed.refreshing:
            feed.dirty = True
            return
        feed.refreshing = True
        task = asyncio.get_running_loop().create_task(self._refresh(feed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, feed: Feed) -> None:
        try:
            while True:
                feed.dirty = False
                events = await self.read(feed.code, feed.last_seq)
                if events:
                    feed.add(events)
                if len(events) < BATCH and not feed.dirty:
                    return
        except Exception as exc:
            # The readers' own timeout brings them back here; nothing is skipped.
            log.warning("live_feed_refresh_failed", dialogue=feed.code, error=repr(exc))
        finally:
            feed.refreshing = False

    def wake(self, code: str) -> None:
        feed = self._feeds.get(code)
        if feed is not None:
            self.refresh(feed)

    def wake_all(self) -> None:
        for feed in list(self._feeds.values()):
            self.refresh(feed)

    # ---------------------------------------------------------------- listening

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload)

    async def run(self) -> None:
        """Listen forever (a background task); reconnect with backoff when the link drops."""
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(LIVE_CHANNEL, self._on_notify)
                self.connected.set()
                delay = 0.5
                # Anything committed while we were not listening: let the feeds re-read.
                self.wake_all()
                log.info("live_listener_connected")
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(30):
                            await lost.wait()
                    if not lost.is_set():
                        await conn.execute("SELECT 1")  # notices a dead link sooner
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live_listener_failed", error=repr(exc), retry_in_s=delay)
            finally:
                self.connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=5)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)


async def live_stream(
    hub: LiveHub,
    code: str,
    start: int,
    times: DialogueTimes,
    *,
    grace: timedelta,
    poll_s: float,
) -> AsyncIterator[dict[str, Any]]:
    """A reader's server-sent events: the phase when it changes, then every event after
    ``start``; ends once the dialogue ended and its grace period passed (the transcript has it
    all)."""
    sent_phase: str | None = None
    async with hub.follow(code, start) as reader:
        while True:
            now = utcnow()
            phase = dialogue_phase(times, now)
            if phase != sent_phase:
                sent_phase = phase
                yield {"event": "status", "data": json.dumps({"phase": phase})}
            events = await reader.next_batch()
            for e in events:
                yield {"id": str(e.seq), "event": e.event, "data": e.data}
            if events:
                continue
            if phase == "ended" and now > times.ends_at + grace:
                return
            await reader.wait(poll_s)
