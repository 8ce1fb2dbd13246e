"""The bulk lane's pacing (pure): the window grows while the pipeline drains with little
queueing, shrinks when queues form, and trickles when nothing is measured. On a simulated
pipeline: a backfill keeps a quick pipeline busy while newcomers barely wait; on a busy machine
(a long processing time) newcomers wait little more while the backfill still moves."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from dataclasses import dataclass, field

import pytest

from portal_runtime.admission import AdmissionWindow, Hop, PipelineGate
from portal_runtime.settings import ServiceSettings


def test_budget_is_the_window_minus_what_is_in_flight_and_what_was_sent_since() -> None:
    window = AdmissionWindow(min_window=50)
    window.observe(0.0, in_flight=20, completed=0)

    assert window.budget(0.1) == 30
    window.sent(bulk=20, total=25)  # news in flight counts too
    assert window.budget(0.2) == 5
    window.sent(bulk=10, total=10)
    assert window.budget(0.3) == 0


def test_rows_sent_while_a_measurement_ran_still_count() -> None:
    window = AdmissionWindow(min_window=50)
    window.observe(0.0, in_flight=0, completed=0)
    before = window.sent_total
    window.sent(bulk=30, total=30)  # sent while the next measurement was on its way
    window.observe(0.5, in_flight=10, completed=0, sent_before=before)

    assert window.budget(0.6) == 50 - 10 - 30


@dataclass
class Pipeline:
    """A pipeline that takes ``base_s`` per article and finishes at most ``capacity`` a second."""

    base_s: float
    capacity: float
    done: list[float] = field(default_factory=list)  # completion times, in admission order
    admitted: int = 0

    def admit(self, now: float, count: int) -> None:
        for _ in range(count):
            previous = self.done[-1] if self.done else 0.0
            self.done.append(max(now + self.base_s, previous + 1 / self.capacity))
        self.admitted += count

    def completed(self, now: float) -> int:
        return bisect.bisect_right(self.done, now)

    def queueing_s(self, now: float) -> float:
        """How long an article admitted now would wait beyond the base time."""
        previous = self.done[-1] if self.done else 0.0
        return max(0.0, previous + 1 / self.capacity - (now + self.base_s))


def run(
    window: AdmissionWindow, pipeline: Pipeline, seconds: float, start: float = 0.0
) -> list[float]:
    """A backfill with no end, paced by ``window``; returns the queueing seen each step."""
    queueing = []
    now = start
    while now < start + seconds:
        done = pipeline.completed(now)
        window.observe(now, pipeline.admitted - done, done)
        budget = window.budget(now)
        pipeline.admit(now, budget)
        window.sent(budget, budget)
        queueing.append(pipeline.queueing_s(now))
        now += 0.5
    return queueing


def test_a_backfill_keeps_a_quick_pipeline_busy_and_newcomers_barely_wait() -> None:
    window = AdmissionWindow(target_delay_s=2.0, min_window=20, max_window=100_000)
    pipeline = Pipeline(base_s=0.5, capacity=300.0)

    queueing = run(window, pipeline, seconds=600)

    assert pipeline.completed(600) - pipeline.completed(300) >= 0.9 * 300 * 300
    assert p99(queueing[len(queueing) // 2 :]) <= window.target_delay_s


@pytest.mark.parametrize(("base_s", "capacity"), [(10.0, 40.0), (30.0, 5.0)])
def test_on_a_busy_machine_newcomers_wait_little_more_and_the_backfill_still_moves(
    base_s: float, capacity: float
) -> None:
    window = AdmissionWindow(target_delay_s=2.0, min_window=20, max_window=100_000)
    pipeline = Pipeline(base_s, capacity)

    queueing = run(window, pipeline, seconds=600)

    allowed = window.target_delay_s + window.tolerance * base_s
    assert p99(queueing[len(queueing) // 2 :]) <= allowed
    # Slower than the pipeline could (its figures are rough), never stuck.
    assert pipeline.completed(600) - pipeline.completed(300) >= 300 * window.min_window / base_s


def test_when_the_pipeline_slows_down_the_queue_empties_again() -> None:
    window = AdmissionWindow(target_delay_s=2.0, min_window=20, max_window=100_000)
    pipeline = Pipeline(base_s=0.5, capacity=300.0)
    run(window, pipeline, seconds=300)

    pipeline.capacity = 100.0  # another service took the machine
    queueing = run(window, pipeline, seconds=300, start=300)

    # Back within what the window allows: the target, plus its tolerance of the base time.
    allowed = window.target_delay_s + window.tolerance * pipeline.base_s
    assert p99(queueing[len(queueing) // 2 :]) <= allowed


def test_a_burst_after_a_quiet_spell_starts_at_the_pipelines_speed() -> None:
    # A quiet minute between two backfills says nothing about how fast the pipeline drains:
    # the second starts from what the first one learnt, not from a trickle.
    window = AdmissionWindow(target_delay_s=2.0, min_window=20, max_window=5000)
    pipeline = Pipeline(base_s=0.5, capacity=300.0)
    run(window, pipeline, seconds=60)
    now = 60.0
    while now < 120.0:  # the gate measures an empty pipeline
        window.observe(now, pipeline.admitted - pipeline.completed(now), pipeline.completed(now))
        now += 0.5
    before = pipeline.completed(120.0)

    run(window, pipeline, seconds=10, start=120.0)

    assert pipeline.completed(130.0) - before >= 0.85 * 300 * 10


def test_with_hops_committing_at_the_default_interval_a_backfill_runs_at_most_of_full_speed() -> (
    None
):
    # A hop's lag counts what it processed but has not committed yet: up to a commit interval
    # of its drain at each hop, read as queueing. At one commit a second over four hops that
    # blur was as large as the target itself, and a backfill from a quiet start crawled (a
    # real bench: 2,000 articles at 34/s with the cores 82 % idle).
    interval = ServiceSettings.model_fields["kafka_commit_interval_ms"].default / 1000
    pipeline = Pipeline(base_s=0.45, capacity=300.0)
    window = AdmissionWindow(target_delay_s=2.0, min_window=20, max_window=5000)
    phases = [0.1 * interval, 0.4 * interval, 0.7 * interval, 0.9 * interval]
    waiting, now = 5000, 0.0
    while pipeline.completed(now) < 5000:
        drain = pipeline.completed(now) - pipeline.completed(now - 1.0)  # per second, lately
        committed = pipeline.completed(now - (now - phases[3]) % interval)  # the last hop's
        blur = sum(drain * ((now - phase) % interval) for phase in phases[:3])
        window.observe(now, pipeline.admitted - committed + int(blur), committed)
        admitted = min(waiting, window.budget(now))
        pipeline.admit(now, admitted)
        window.sent(admitted, admitted)
        waiting -= admitted
        now += 0.5

    assert 5000 / now >= 0.7 * 300


def test_nothing_draining_while_something_waits_cuts_the_window() -> None:
    window = AdmissionWindow(min_window=20)
    window.window = 100
    for step in range(10):
        window.observe(step * 0.5, in_flight=80, completed=500)  # stuck downstream

    assert window.window == 20
    assert window.budget(5.0) == 0


def p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


def test_the_window_never_leaves_its_bounds() -> None:
    window = AdmissionWindow(min_window=20, max_window=100)
    window.observe(0.0, in_flight=0, completed=0)
    for step in range(1, 30):
        window.observe(float(step), in_flight=int(window.window), completed=step * 1000)
    assert window.window == 100
    for step in range(30, 60):
        window.observe(float(step), in_flight=10_000, completed=30_000)
    assert window.window == 20


def test_without_a_recent_measurement_bulk_rows_trickle() -> None:
    window = AdmissionWindow(stale_after_s=5.0, fallback_rate=3.0)
    assert window.budget(100.0) == 3  # never measured
    window.sent(bulk=3, total=3)
    assert window.budget(100.5) == 0
    assert window.budget(101.0) == 3  # the next second

    window.observe(200.0, in_flight=0, completed=0)
    assert window.budget(200.1) == window.min_window
    assert window.budget(206.0) == 3  # the measurements stopped


def test_hops_are_written_group_colon_topic() -> None:
    assert Hop.parse("normalize:article.ingested") == Hop("normalize", "article.ingested")
    for bad in ("normalize", ":article.ingested", "normalize:"):
        with pytest.raises(ValueError, match="consumer group"):
            Hop.parse(bad)


class CountingGate(PipelineGate):
    """A gate whose measurement is a scripted pipeline: what is in flight, counted calls."""

    def __init__(self, in_flight: int) -> None:
        super().__init__({}, [Hop("g", "t")], AdmissionWindow(), interval_s=0.01)
        self.idle_interval_s = 60.0
        self.pipeline_in_flight = in_flight
        self.calls = 0

    async def measure(self) -> tuple[int, int]:
        self.calls += 1
        return self.pipeline_in_flight, 0


async def _measurements(gate: CountingGate, seconds: float, *, sending: bool = False) -> int:
    task = asyncio.create_task(gate.run())
    try:
        for _ in range(int(seconds / 0.01)):
            if sending:
                gate.sent(0, 1)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return gate.calls


async def test_an_idle_pipeline_is_measured_only_every_idle_interval() -> None:
    # Empty and quiet: the first measurement, then one per idle interval (a minute).
    assert await _measurements(CountingGate(in_flight=0), 0.3) == 1
    # Something in flight, or rows being sent: every interval (0.01 s).
    assert await _measurements(CountingGate(in_flight=3), 0.3) >= 3
    assert await _measurements(CountingGate(in_flight=0), 0.3, sending=True) >= 3
