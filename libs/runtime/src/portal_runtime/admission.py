"""Pacing of the relay's bulk lane: how many bulk rows may enter the pipeline now.

A backfill sent to Kafka as fast as it arrives would only move its queue from the outbox into
the topics, where every later article waits behind it (a topic is one queue per partition). So
the bulk lane enters the pipeline only as fast as the pipeline drains: the relay lets bulk rows
out while the articles in flight downstream stay within a window, sized so that the time a
newcomer spends *queueing* stays near a target. Rows of both lanes take room in the window (the
news first); rows the relay sent that a measurement may have missed count as in flight until
the next one, so a slow measurement never lets the window be filled twice.

* ``AdmissionWindow`` (pure) decides. In flight = the consumer lag summed over the watched hops
  (every article is in exactly one hop's queue or hands); the drain rate = how fast the last hop
  commits, over the last ten seconds it was busy (a quiet spell between two backfills is left
  out: it says nothing of how fast the pipeline drains). Little's law gives the time an article
  spends in the pipeline, in flight / rate. Part of it is the pipeline's own processing time,
  which no pacing shortens (long on a busy machine): its lowest value over the last ten minutes
  is taken as that base, the rest is queueing (as TCP Vegas tells queueing from a path's own
  round trip). While queueing stays under half of what is allowed (the target, plus a quarter
  of the base: a slow pipeline's figures are rough) and the window is in use, the window grows
  by what drained meanwhile (doubling per base time while far from any queue or before a base
  is known, a fifth of that near one; the time and the growth follow the last two seconds'
  drain while it clearly outruns the horizon's, which lags a pipeline speeding up as the window
  grows); above what is allowed, it is cut to what the pipeline drains in its base time plus a
  quarter of the target, so the queue empties, at most once per base time (a cut shows
  downstream only after that long). Errors go the safe way: a base measured too low slows the
  backfill, never the news.
* ``PipelineGate`` measures (consumer groups' committed offsets and the topics' end offsets,
  through Kafka's admin API) and feeds the window: every interval while anything is in flight
  or being sent, and only every idle interval while the pipeline is empty and the relay quiet
  (the first row sent brings the next measurement back within one interval).

Normal rows never wait for this: only the bulk lane is paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from portal_runtime.kafka import started
from portal_runtime.logs import get_logger
from portal_runtime.metrics import GaugeValues, GroupCoordinators, declare_gauge

log = get_logger(__name__)

PIPELINE_IN_FLIGHT = "portal.relay.pipeline.in_flight"
BULK_WINDOW = "portal.relay.bulk.window"
declare_gauge(
    PIPELINE_IN_FLIGHT,
    unit="{event}",
    description="Articles queued in the pipeline's hops, as the relay's bulk lane measures it "
    "(consumer lag summed over the watched hops).",
)
declare_gauge(
    BULK_WINDOW,
    unit="{event}",
    description="Articles the relay's bulk lane lets be in flight in the pipeline now.",
)


class Admission(Protocol):
    """What the relay asks before sending bulk rows."""

    def budget(self, now: float) -> int:
        """How many bulk rows may be sent now."""
        ...

    def sent(self, bulk: int, total: int) -> None:
        """The relay sent ``total`` rows, ``bulk`` of them from the bulk lane."""
        ...


class Unpaced:
    """The bulk lane is only lower priority than the normal one (services with no pacing)."""

    def budget(self, now: float) -> int:
        return 1 << 30

    def sent(self, bulk: int, total: int) -> None:
        return None


class _Sample(NamedTuple):
    when: float
    in_flight: int
    completed: int  # by the last hop, in all
    busy: float  # seconds the pipeline had work, up to this sample


@dataclass
class AdmissionWindow:
    """Additive-increase, multiplicative-decrease window on the articles in flight."""

    target_delay_s: float = 2.0
    min_window: int = 20
    max_window: int = 5000
    # Without a measurement this recent, bulk rows trickle at ``fallback_rate`` per second.
    stale_after_s: float = 5.0
    fallback_rate: float = 5.0
    # Rates and times in the pipeline are averaged over this much of its busy time (commits
    # come in bursts).
    horizon_s: float = 10.0
    # How long the lowest time in the pipeline is remembered as its base (processing) time.
    base_memory_s: float = 600.0
    # The window grows by this part of what drained (a gentle probe for more room).
    growth: float = 0.2
    # Queueing allowed beyond the target, as a part of the base time.
    tolerance: float = 0.25
    # The last seconds' drain this much above the horizon's: the pipeline speeds up.
    speedup: float = 1.2

    def __post_init__(self) -> None:
        self.window = float(self.min_window)
        self.in_flight = 0
        self.rate = 0.0  # articles per second leaving the last hop, over the horizon
        self.rate_now = 0.0  # the same over the last two seconds
        self.time_s = 0.0  # time an article spends in the pipeline now (Little's law)
        self._observed_at: float | None = None
        self.sent_total = 0  # rows the relay sent, both lanes (they are in flight too)
        self._sent_since = 0  # of which not in the last measurement
        self._fallback_since = 0.0
        self._fallback_sent = 0
        self._samples: deque[_Sample] = deque()
        self._times: deque[tuple[float, float]] = deque()  # (when, time in the pipeline)
        self._last_cut = float("-inf")

    @property
    def base_s(self) -> float:
        """The pipeline's own processing time: among the lowest times in it lately."""
        return min((t for _, t in self._times), default=0.0)

    @property
    def unmeasured(self) -> int:
        """Rows sent that the last measurement may not have seen."""
        return self._sent_since

    @property
    def queueing_s(self) -> float:
        """Time a newcomer spends waiting behind others now, beyond the base."""
        return max(0.0, self.time_s - self.base_s)

    def observe(
        self, now: float, in_flight: int, completed: int, sent_before: int | None = None
    ) -> None:
        """A measurement: articles queued in the watched hops and the last hop's total count.

        ``sent_before`` is ``sent_total`` when the measurement began: rows sent after that may
        be missing from it, so they still count as in flight (without it, none do)."""
        in_flight = max(0, in_flight)
        # Rates and times are taken over the pipeline's busy time only: a stretch with nothing
        # in flight and nothing completed says nothing about how fast it drains, and counted in,
        # it made the first seconds of a burst after a quiet spell look slow (a rate averaged
        # with the idle time, so a queueing time too long), and the window was cut to a trickle
        # just when the backfill began.
        busy = 0.0
        if self._samples:
            last = self._samples[-1]
            was_busy = last.in_flight > 0 or completed > last.completed
            busy = last.busy + (now - last.when if was_busy else 0.0)
            if in_flight == 0 and last.in_flight == 0 and completed == last.completed:
                # Still quiet: one sample stands for the whole spell, so that the averages
                # over the horizon are not diluted by it either.
                self._samples.pop()
        self._samples.append(_Sample(now, in_flight, completed, busy))
        while len(self._samples) > 2 and self._samples[1].busy <= busy - self.horizon_s:
            self._samples.popleft()
        first = self._samples[0]
        span = busy - first.busy
        if span >= min(self.horizon_s, 2.0):
            self.rate = max(0, completed - first.completed) / span
            if self.rate > 0:
                # The time in the pipeline now (Little's law), over the last two seconds:
                # admissions come in steps. Against the horizon's rate, except while the
                # pipeline clearly speeds up (as the window grows): the horizon's rate lags
                # it, the time then looked long and the ramp crawled.
                recent = list(self._samples)[-5:]
                drained = recent[-1].completed - recent[0].completed
                recent_span = recent[-1].busy - recent[0].busy
                self.rate_now = drained / recent_span if recent_span > 0 else 0.0
                speeding_up = self.rate_now > self.speedup * self.rate
                rate = self.rate_now if speeding_up else self.rate
                self.time_s = sum(s.in_flight for s in recent) / len(recent) / rate
                if span >= self.horizon_s * 0.5 and in_flight > 0:
                    # The base comes from averages over the horizon (Little's law holds for
                    # averages over the span of the rate).
                    mean = sum(s.in_flight for s in self._samples) / len(self._samples)
                    self._times.append((now, mean / self.rate))
            else:
                self.time_s = float("inf") if in_flight > 0 else 0.0
            while self._times and self._times[0][0] < now - self.base_memory_s:
                self._times.popleft()
            self._adjust(now, in_flight)
        self._observed_at = now
        self.in_flight = in_flight
        self._sent_since = 0 if sent_before is None else max(0, self.sent_total - sent_before)

    def _adjust(self, now: float, in_flight: int) -> None:
        elapsed = now - (self._observed_at if self._observed_at is not None else now)
        base = self.base_s
        # Measurements of a slow pipeline are rough: a tolerance grows with its base time.
        allowed = self.target_delay_s + self.tolerance * base
        if self.queueing_s > allowed:
            # Queues grow (or nothing drains while something waits): back off to what the
            # pipeline drains in its base time plus a quarter of the target, so the queue
            # empties, once per base time (a cut shows downstream only after that long).
            if in_flight >= self.min_window and now - self._last_cut >= max(1.0, base):
                fits = self.rate * (base + self.target_delay_s / 4)
                self.window = max(float(self.min_window), min(self.window * 0.7, fits))
                self._last_cut = now
        elif self.queueing_s < allowed / 2 and in_flight + self._sent_since >= self.window * 0.5:
            # Room left and the window is in use: grow by a part of what drained meanwhile, by
            # all of it while far from any queue (the window then doubles per base time).
            if self.queueing_s < allowed / 4 or not self._times:
                # Far from any queue (or no base known yet, as in a first backfill): by all
                # that drained, at the pace of the last seconds (the horizon's lags a pipeline
                # speeding up as the window grows).
                growth = max(self.rate, self.rate_now) * elapsed
            else:
                growth = self.growth * self.rate * elapsed
            growth = max(1.0, growth)
            self.window = min(float(self.max_window), self.window + growth)

    def budget(self, now: float) -> int:
        if self._observed_at is None or now - self._observed_at > self.stale_after_s:
            if now - self._fallback_since >= 1.0:
                self._fallback_since, self._fallback_sent = now, 0
            return max(0, int(self.fallback_rate) - self._fallback_sent)
        return max(0, int(self.window) - self.in_flight - self._sent_since)

    def sent(self, bulk: int, total: int) -> None:
        self.sent_total += total
        self._sent_since += total
        self._fallback_sent += bulk


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
        kafka: Mapping[str, Any],
        hops: Sequence[Hop],
        window: AdmissionWindow,
        interval_s: float = 0.5,
        client_id: str = "portal-relay-gate",
        idle_interval_s: float | None = None,
    ) -> None:
        # Address and credentials (kafka_security.client_options); the principal needs DESCRIBE
        # on the hops' groups and topics.
        self.kafka = dict(kafka)
        self.hops = tuple(hops)
        self.window = window
        self.interval_s = interval_s
        # While idle: none in flight at the last measurement and no row sent since.
        self.idle_interval_s = max(interval_s, idle_interval_s or interval_s)
        self.client_id = client_id
        self._admin: Any = None
        self._consumer: Any = None
        self._partitions: list[Any] = []
        self._coordinators = GroupCoordinators()

    def budget(self, now: float) -> int:
        return self.window.budget(now) if self.hops else 1 << 30

    def sent(self, bulk: int, total: int) -> None:
        self.window.sent(bulk, total)

    async def gauges(self) -> dict[str, GaugeValues]:
        """The window and what it measured (a poll of the service's metrics)."""
        return {
            PIPELINE_IN_FLIGHT: {(): float(self.window.in_flight)},
            BULK_WINDOW: {(): float(self.window.window)},
        }

    async def measure(self) -> tuple[int, int]:
        """(articles queued over every hop, total committed by the last hop)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            self._admin = await started(AIOKafkaAdminClient(**self.kafka, client_id=self.client_id))
        if self._consumer is None:
            self._consumer = await started(
                AIOKafkaConsumer(**self.kafka, client_id=self.client_id, group_id=None)
            )
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
            offsets = await self._coordinators.committed(self._admin, hop.group, mine)
            for tp in mine:
                offset = offsets.get(tp)
                if offset is None:
                    continue
                in_flight += max(0, int(ends[tp]) - int(offset))
                if i == len(self.hops) - 1:
                    completed += int(offset)
        return in_flight, completed

    async def run(self) -> None:
        """Measure for ever (a background task of the service); failures only make it stale."""
        if not self.hops:
            return
        measured_at = float("-inf")
        try:
            while True:
                started = time.monotonic()
                # Idle: the last measurement found nothing in flight and no row was sent
                # since it began (a row it may have missed keeps the measurements coming).
                idle = self.window.in_flight == 0 and self.window.unmeasured == 0
                if idle and started - measured_at < self.idle_interval_s:
                    await asyncio.sleep(self.interval_s)
                    continue
                measured_at = started
                try:
                    before = self.window.sent_total
                    # Not ``wait_for``: on Python 3.11 it swallows a cancellation that arrives
                    # as the measurement finishes, and the gate then never stops.
                    async with asyncio.timeout(10.0):
                        in_flight, completed = await self.measure()
                    self.window.observe(time.monotonic(), in_flight, completed, before)
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
