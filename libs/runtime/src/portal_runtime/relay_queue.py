"""What the outbox relay sends next: fair between sources, bulk after the rest, in order per key.

The relay keeps the outbox rows it knows of (handed over at commit, or found by polling) as
small entries here; a row this process wrote keeps what it wrote too (its columns, value
included), up to a budget of bytes, so the relay need not read back what it just wrote. Each
round takes a batch:

* the normal lane first, then the bulk lane up to a budget the caller sets (its pacing);
* within a lane, one row per source (``fair_key``) in turn, so one agency's thousands of rows
  never stand in front of another agency's one;
* rows of one key (one article) in id order, never overtaking each other: all the waiting rows
  of a key live in one queue, and a row of a key whose earlier row waits for a retry waits too.
  A normal row for a key with rows in the bulk lane takes them along to the normal lane.

Pure logic, no I/O; the relay (``relay.py``) does the reading, sending and deleting.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Lane(IntEnum):
    """How urgent a row is; stored with the row, so a restart keeps it."""

    NORMAL = 0
    BULK = 1  # a backfill or a burst: sent when the pipeline has room (the relay's pacing)


QueueId = tuple[Lane, str | None]


@dataclass(slots=True)
class Entry:
    """One outbox row waiting to be sent."""

    id: int
    key: bytes | None
    lane: Lane = Lane.NORMAL
    fair_key: str | None = None
    attempts: int = 0
    not_before: float = 0.0
    # The columns this process wrote (None: the relay reads the row from the table).
    written: dict[str, Any] | None = None


@dataclass(slots=True)
class _Queue:
    ids: deque[int] = field(default_factory=deque)

    def insert(self, entry_id: int) -> None:
        if not self.ids or entry_id > self.ids[-1]:
            self.ids.append(entry_id)  # the usual case: rows arrive in id order
        else:
            self.ids.insert(bisect.bisect_left(self.ids, entry_id), entry_id)


class RelayQueue:
    """The relay's queues (see the module's docstring). ``capacity`` bounds the entries kept."""

    def __init__(
        self,
        capacity: int = 50_000,
        retry_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        max_value_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.capacity = capacity
        # The values of the rows kept with their entries, in all (beyond it, entries come
        # without them).
        self.max_value_bytes = max_value_bytes
        self.value_bytes = 0
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self._entries: dict[int, Entry] = {}
        self._queues: dict[QueueId, _Queue] = {}
        # Per lane, the queues in turn order (round robin between sources).
        self._turns: dict[Lane, deque[QueueId]] = {lane: deque() for lane in Lane}
        # Per key: the queue holding its waiting rows, and how many it has (queued or taken).
        self._key_queue: dict[bytes, QueueId] = {}
        self._key_count: dict[bytes, int] = {}
        self._taken: set[int] = set()
        self._retrying: set[int] = set()  # entries with a not_before (failed at least once)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.capacity

    def waiting(self) -> dict[Lane, int]:
        """Entries queued (not taken) per lane."""
        counts = dict.fromkeys(Lane, 0)
        for (lane, _), queue in self._queues.items():
            counts[lane] += len(queue.ids)
        return counts

    # -- adding ------------------------------------------------------------------------------

    def add(self, entry: Entry) -> bool:
        """Queue ``entry``; False when it is known already or the queue is full."""
        if entry.id in self._entries or self.full:
            return False
        if entry.written is not None:
            size = len(entry.written["value"])
            if self.value_bytes + size > self.max_value_bytes:
                entry.written = None
            else:
                self.value_bytes += size
        self._entries[entry.id] = entry
        target: QueueId = (entry.lane, entry.fair_key)
        if entry.key is not None:
            current = self._key_queue.get(entry.key)
            if current is not None:
                target = current
                if entry.lane is Lane.NORMAL and current[0] is Lane.BULK:
                    target = self._promote(entry.key, current)
            self._key_queue[entry.key] = target
            self._key_count[entry.key] = self._key_count.get(entry.key, 0) + 1
        entry.lane = target[0]
        self._queue(target).insert(entry.id)
        return True

    def _queue(self, qid: QueueId) -> _Queue:
        queue = self._queues.get(qid)
        if queue is None:
            queue = self._queues[qid] = _Queue()
            self._turns[qid[0]].append(qid)
        return queue

    def _promote(self, key: bytes, bulk: QueueId) -> QueueId:
        """Move ``key``'s rows from a bulk queue to the normal queue of the same source."""
        normal: QueueId = (Lane.NORMAL, bulk[1])
        source = self._queues.get(bulk)
        if source is not None:
            moving = [i for i in source.ids if self._entries[i].key == key]
            if moving:
                source.ids = deque(i for i in source.ids if self._entries[i].key != key)
                target = self._queue(normal)
                for entry_id in moving:
                    self._entries[entry_id].lane = Lane.NORMAL
                    target.insert(entry_id)
                self._drop_if_empty(bulk)
        for entry_id in self._taken:
            if self._entries[entry_id].key == key:
                self._entries[entry_id].lane = Lane.NORMAL
        self._key_queue[key] = normal
        return normal

    def _drop_if_empty(self, qid: QueueId) -> None:
        queue = self._queues.get(qid)
        if queue is not None and not queue.ids:
            del self._queues[qid]
            self._turns[qid[0]].remove(qid)

    # -- taking ------------------------------------------------------------------------------

    def take(self, max_rows: int, bulk_budget: int, now: float) -> list[Entry]:
        """The next batch: normal rows first, then at most ``bulk_budget`` bulk rows."""
        batch: list[Entry] = []
        blocked: set[bytes] = set()  # keys whose earlier row waits for a retry
        for lane, limit in ((Lane.NORMAL, max_rows), (Lane.BULK, bulk_budget)):
            wanted = min(limit, max_rows - len(batch))
            taken = self._take_lane(lane, wanted, now, blocked)
            batch.extend(taken)
        for entry in batch:
            self._taken.add(entry.id)
        return batch

    def _take_lane(self, lane: Lane, wanted: int, now: float, blocked: set[bytes]) -> list[Entry]:
        out: list[Entry] = []
        turns = self._turns[lane]
        exhausted: set[QueueId] = set()  # queues with nothing eligible in this round
        while len(out) < wanted and len(exhausted) < len(turns):
            qid = turns[0]
            turns.rotate(-1)
            if qid in exhausted:
                continue
            entry = self._pop_eligible(self._queues[qid], now, blocked)
            if entry is None:
                exhausted.add(qid)
                continue
            out.append(entry)
        for qid in [q for q in turns if not self._queues[q].ids]:
            self._drop_if_empty(qid)
        return out

    def _pop_eligible(self, queue: _Queue, now: float, blocked: set[bytes]) -> Entry | None:
        skipped: list[int] = []
        found: Entry | None = None
        while queue.ids:
            entry = self._entries[queue.ids.popleft()]
            if entry.key is not None and entry.key in blocked:
                skipped.append(entry.id)
                continue
            if entry.not_before > now:
                if entry.key is not None:
                    blocked.add(entry.key)
                skipped.append(entry.id)
                continue
            found = entry
            break
        queue.ids.extendleft(reversed(skipped))
        return found

    def next_retry_at(self) -> float | None:
        """When the earliest entry waiting for a retry becomes eligible (None: none waits)."""
        times = [self._entries[i].not_before for i in self._retrying]
        return min(times) if times else None

    # -- after a round -----------------------------------------------------------------------

    def forget(self, ids: Iterable[int]) -> None:
        """Rows sent, set aside, or gone (another relay sent them): no longer ours to send."""
        for entry_id in ids:
            entry = self._entries.pop(entry_id, None)
            if entry is None:
                continue
            if entry.written is not None:
                self.value_bytes -= len(entry.written["value"])
            self._retrying.discard(entry_id)
            if entry_id in self._taken:
                self._taken.discard(entry_id)
            else:
                self._unqueue(entry)
            if entry.key is not None:
                left = self._key_count.get(entry.key, 1) - 1
                if left <= 0:
                    self._key_count.pop(entry.key, None)
                    self._key_queue.pop(entry.key, None)
                else:
                    self._key_count[entry.key] = left

    def _unqueue(self, entry: Entry) -> None:
        for qid, queue in list(self._queues.items()):
            if entry.id in queue.ids:
                queue.ids.remove(entry.id)
                self._drop_if_empty(qid)
                return

    def retry(self, ids: Iterable[int], now: float) -> None:
        """Rows that failed to send: back in their place, tried again after a backoff."""
        for entry_id in ids:
            entry = self._entries.get(entry_id)
            if entry is None or entry_id not in self._taken:
                continue
            self._taken.discard(entry_id)
            entry.attempts += 1
            delay = min(self.max_backoff_s, self.retry_backoff_s * 2 ** min(entry.attempts - 1, 10))
            entry.not_before = now + delay
            self._retrying.add(entry_id)
            self._queue(self._home(entry)).insert(entry_id)

    def release(self, ids: Iterable[int]) -> None:
        """Rows taken but not tried (a round that could not start): back in their place."""
        for entry_id in ids:
            entry = self._entries.get(entry_id)
            if entry is None or entry_id not in self._taken:
                continue
            self._taken.discard(entry_id)
            self._queue(self._home(entry)).insert(entry_id)

    def _home(self, entry: Entry) -> QueueId:
        """The queue a taken entry goes back to: its key's (which may have been promoted)."""
        own: QueueId = (entry.lane, entry.fair_key)
        return own if entry.key is None else self._key_queue.get(entry.key, own)
