"""The pipeline bench's completion times (bench/pipeline/measure.py): the articles one poll
finds are spread over the span since the previous poll, so the throughput slope is measured as
it is, not stuck on the one-second grid of the polls."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# The bench is scripts, not an installed package: its module is loaded from its file.
_PATH = Path(__file__).resolve().parents[2] / "bench" / "pipeline" / "measure.py"
_SPEC = importlib.util.spec_from_file_location("bench_pipeline_measure", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
measure = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = measure
_SPEC.loader.exec_module(measure)
spread_over, steady_rate = measure.spread_over, measure.steady_rate


def test_the_documents_of_one_poll_are_spread_evenly_over_its_span_in_order() -> None:
    assert spread_over(10.0, 11.0, 4) == [10.125, 10.375, 10.625, 10.875]
    assert spread_over(10.0, 11.0, 1) == [10.5]  # alone: the middle of the span
    assert spread_over(10.0, 11.0, 0) == []


@pytest.mark.parametrize("rate", [290.0, 301.5, 307.0])
def test_a_steady_rate_found_by_polls_once_a_second_is_measured_within_half_a_percent(
    rate: float,
) -> None:
    arrivals = [(i + 0.3) / rate for i in range(10_000)]
    times: list[float] = []
    for second in range(40):
        found = [a for a in arrivals if second < a <= second + 1]
        times.extend(spread_over(second, second + 1, len(found)))
    assert steady_rate(times) == pytest.approx(rate, rel=0.005)
