"""Pacing of the relay's bulk lane: how many bulk rows may enter the pipeline now.

A backfill sent to Kafka as fast as it arrives would only move its queue from the outbox into
the topics, where every later article waits behind it (a topic is one queue per partition). So
the bulk lane enters the pipeline only as fast as the pipeline drains: the relay lets bulk rows
out while the articles in flight downstream stay within a window, and sizes the window so that
the time a newcomer spends queueing stays near a target.

* ``AdmissionWindow`` (pure) decides. In flight = the consumer lag summed over the watched hops
  (every article is in exactly one hop's queue); the drain rate = how fast the last hop commits.
  Little's law gives the queueing delay, lag / rate. Below the target the window grows by what
  drains in one interval, above it the window shrinks by 30 % (additive increase, multiplicative
  decrease, as TCP does for the same problem).
* ``PipelineGate`` measures (consumer groups' committed offsets and the topics' end offsets,
  through Kafka's admin API) and feeds the window.

Normal rows never wait for this: only the bulk lane is paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from portal_runtime.logs import get_logger

log = get_logger(__name__)


class Admission(Protocol):
    """What the relay asks before sending bulk rows."""

    def budget(self, now: float) -> int:
        """How many bulk rows may be sent now."""
        ...

    def admitted(self, count: int) -> None:
        """``count`` bulk rows were sent."""
        ...


class Unpaced:
    """The bulk lane is only lower priority than the normal one (services with no pacing)."""

    def budget(self, now: float) -> int:
        return 1 << 30

    def admitted(self, count: int) -> None:
        return None


@dataclass
class AdmissionWindow:
    """Additive-increase, multiplicative-decrease window on the articles in flight."""

    target_delay_s: float = 2.0
    min_window: int = 20
    max_window: int = 5000
    # Without a measurement this recent, bulk rows trickle at ``fallback_rate`` per second.
    stale_after_s: float = 5.0
    fallback_rate: float = 5.0
    rate_smoothing: float = 0.3

    def __post_init__(self) -> None:
        self.window = float(self.min_window)
        self.in_flight = 0
        self.rate = 0.0  # articles per second leaving the last hop (smoothed)
        self._observed_at: float | None = None
        self._completed: int | None = None
        self._sent_since = 0
        self._fallback_since = 0.0
        self._fallback_sent = 0

    @property
    def delay_s(self) -> float:
        """Queueing delay a newcomer meets now (Little's law)."""
        if self.in_flight <= 0:
            return 0.0
        return self.in_flight / self.rate if self.rate > 0 else float("inf")

    def observe(self, now: float, in_flight: int, completed: int) -> None:
        """A measurement: articles queued in the watched hops, and the last hop's total count."""
        if self._observed_at is not None and self._completed is not None:
            elapsed = now - self._observed_at
            if elapsed > 0:
                instant = max(0, completed - self._completed) / elapsed
                a = self.rate_smoothing
                self.rate = instant if self.rate == 0 else a * instant + (1 - a) * self.rate
                self._adjust(elapsed, in_flight)
        self._observed_at = now
        self._completed = completed
        self.in_flight = max(0, in_flight)
        self._sent_since = 0

    def _adjust(self, elapsed: float, in_flight: int) -> None:
        delay = in_flight / self.rate if self.rate > 0 else (0.0 if in_flight == 0 else None)
        if delay is None or delay > self.target_delay_s:
            # Queues grow (or nothing drains while something waits): back off.
            if in_flight >= self.min_window:
                self.window = max(float(self.min_window), self.window * 0.7)
        elif in_flight >= self.window * 0.5:
            # Room left and the window is in use: grow by what drained meanwhile.
            self.window = min(float(self.max_window), self.window + max(1.0, self.rate * elapsed))

    def budget(self, now: float) -> int:
        if self._observed_at is None or now - self._observed_at > self.stale_after_s:
            if now - self._fallback_since >= 1.0:
                self._fallback_since, self._fallback_sent = now, 0
            return max(0, int(self.fallback_rate) - self._fallback_sent)
        return max(0, int(self.window) - self.in_flight - self._sent_since)

    def admitted(self, count: int) -> None:
        self._sent_since += count
        self._fallback_sent += count


@dataclass(frozen=True)
class Hop:
    """A consumer group reading a topic: one stage of the pipeline."""

    group: str
    topic: str

    @classmethod
    def parse(cls, text: str) -> Hop:
        group, sep, topic = text.partition(":")
        if not sep or not group.strip() or not topic.strip():
            raise ValueError(f"'{text}' is not '<consumer group>:<topic>'")
        return cls(group.strip(), topic.strip())


class PipelineGate:
    """Feeds an ``AdmissionWindow`` from Kafka: the lag of ``hops``, measured every interval.

    A hop whose group has never committed on a partition counts no lag there (a group that is
    not deployed, or not started yet, holds no queue anyone could wait for).
    """

    def __init__(
        self,
        bootstrap: str,
        hops: Sequence[Hop],
        window: AdmissionWindow,
        interval_s: float = 0.5,
        client_id: str = "portal-relay-gate",
    ) -> None:
        self.bootstrap = bootstrap
        self.hops = tuple(hops)
        self.window = window
        self.interval_s = interval_s
        self.client_id = client_id
        self._admin: Any = None
        self._consumer: Any = None
        self._partitions: list[Any] = []

    def budget(self, now: float) -> int:
        return self.window.budget(now) if self.hops else 1 << 30

    def admitted(self, count: int) -> None:
        self.window.admitted(count)

    async def measure(self) -> tuple[int, int]:
        """(articles queued over every hop, total committed by the last hop)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=self.client_id)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, client_id=self.client_id, group_id=None
            )
            await consumer.start()
            self._consumer = consumer
        if not self._partitions:
            described = await self._admin.describe_topics(sorted({h.topic for h in self.hops}))
            self._partitions = [
                TopicPartition(t["topic"], int(p["partition"]))
                for t in described
                if not t.get("error_code")
                for p in t.get("partitions", [])
            ]
        partitions = self._partitions
        if not partitions:
            return 0, 0
        ends = await self._consumer.end_offsets(partitions)
        in_flight = completed = 0
        for i, hop in enumerate(self.hops):
            mine = [tp for tp in partitions if tp.topic == hop.topic]
            offsets = await self._admin.list_consumer_group_offsets(hop.group, partitions=mine)
            for tp in mine:
                meta = offsets.get(tp)
                if meta is None or meta.offset < 0:
                    continue
                in_flight += max(0, int(ends[tp]) - int(meta.offset))
                if i == len(self.hops) - 1:
                    completed += int(meta.offset)
        return in_flight, completed

    async def run(self) -> None:
        """Measure for ever (a background task of the service); failures only make it stale."""
        if not self.hops:
            return
        try:
            while True:
                started = time.monotonic()
                try:
                    in_flight, completed = await asyncio.wait_for(self.measure(), timeout=10.0)
                    self.window.observe(time.monotonic(), in_flight, completed)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("pipeline_gate_measure_failed", error=repr(exc))
                    await self._close()
                await asyncio.sleep(max(0.05, self.interval_s - (time.monotonic() - started)))
        finally:
            await asyncio.shield(self._close())

    async def _close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        self._partitions = []  # described again: a topic may have gained partitions
        for client in (admin, consumer):
            if client is None:
                continue
            with contextlib.suppress(Exception):
                await (client.close() if client is admin else client.stop())
