"""The bulk lane's pacing (pure): the window grows while the pipeline drains with little
queueing, shrinks when queues form, and trickles when nothing is measured."""

from __future__ import annotations

import pytest

from portal_runtime.admission import AdmissionWindow, Hop


def test_budget_is_the_window_minus_what_is_in_flight_and_what_was_sent_since() -> None:
    window = AdmissionWindow(min_window=50)
    window.observe(0.0, in_flight=20, completed=0)

    assert window.budget(0.1) == 30
    window.admitted(25)
    assert window.budget(0.2) == 5
    window.admitted(10)
    assert window.budget(0.3) == 0


def test_the_window_grows_while_the_queueing_delay_stays_under_the_target() -> None:
    window = AdmissionWindow(target_delay_s=2.0, min_window=20, max_window=1000)
    window.observe(0.0, in_flight=0, completed=0)
    completed = 0
    for step in range(1, 21):
        completed += 50  # 100 articles/s drain, 20 in flight: 0.2 s of queueing
        window.observe(step * 0.5, in_flight=int(window.window), completed=completed)

    assert window.rate == pytest.approx(100, rel=0.01)
    assert window.window > 200


def test_the_window_shrinks_when_queues_form() -> None:
    window = AdmissionWindow(target_delay_s=2.0, min_window=20)
    window.window = 800
    window.observe(0.0, in_flight=0, completed=0)
    window.observe(1.0, in_flight=600, completed=100)  # 100/s, 6 s of queueing

    assert window.window == pytest.approx(560)
    window.observe(2.0, in_flight=600, completed=200)
    assert window.window == pytest.approx(392)


def test_nothing_draining_while_something_waits_shrinks_the_window_too() -> None:
    window = AdmissionWindow(min_window=20)
    window.window = 100
    window.observe(0.0, in_flight=80, completed=500)
    window.observe(1.0, in_flight=80, completed=500)

    assert window.window == pytest.approx(70)


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
    window.admitted(3)
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
