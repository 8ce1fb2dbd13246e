"""Which lane an accepted item takes to the pipeline: the day's news, or bulk (pure logic).

One agency's archive import must not hold up the other agencies' news. Ingest's outbox relay
sends the normal lane first, one agency after another, and lets the bulk lane into the pipeline
only as fast as the pipeline drains (``portal_runtime.relay_queue`` and ``admission``). An item
goes in the bulk lane when its sender says it is a backfill (``backfill: true`` on REST or on
the partner's Kafka message, a sitemap backfill of a pulled source), or when its agency is
sending in a burst: more than ``threshold`` items within ``window_s`` (counted per agency, in
this process), until its pace falls back to half of that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from portal_runtime.relay_queue import Lane


@dataclass
class BurstDetector:
    threshold: int = 30
    window_s: float = 10.0
    # Newest arrival times per agency; at most threshold + 1 are needed to tell a burst.
    _arrivals: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)
    _bursting: set[str] = field(default_factory=set, init=False, repr=False)

    def lane(self, source: str, now: float, *, backfill: bool = False) -> Lane:
        """Count an item of ``source`` accepted at ``now`` and tell its lane."""
        arrivals = self._arrivals.get(source)
        if arrivals is None:
            arrivals = self._arrivals[source] = deque(maxlen=self.threshold + 1)
        arrivals.append(now)
        recent = self._recent(arrivals, now)
        if source in self._bursting:
            if recent <= self.threshold // 2:
                self._bursting.discard(source)
        elif recent > self.threshold:
            self._bursting.add(source)
        return Lane.BULK if backfill or source in self._bursting else Lane.NORMAL

    def bursting(self, now: float) -> set[str]:
        """Agencies in a burst now (for metrics and logs)."""
        for source in list(self._bursting):
            if self._recent(self._arrivals[source], now) <= self.threshold // 2:
                self._bursting.discard(source)
        return set(self._bursting)

    def _recent(self, arrivals: deque[float], now: float) -> int:
        while arrivals and arrivals[0] <= now - self.window_s:
            arrivals.popleft()
        return len(arrivals)
