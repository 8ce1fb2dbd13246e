"""Fault tests: the six services run as processes on the real stack (the e2e fixture, imported),
a partner pushes a stream of articles, and each test breaks one part mid-stream.

Each test records its counts; they are printed at the end of the run (also when it passes), so
CI's log shows pushed, published, duplicates and lost per fault.
"""

from __future__ import annotations

import pytest

from tests.chaos.report import RESULTS
from tests.e2e.conftest import partner_images, portal  # noqa: F401 - the e2e tests' fixtures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    terminalreporter.section("chaos: counts per fault")
    for counts in RESULTS:
        terminalreporter.write_line(counts.line())
    total = {
        key: sum(getattr(c, key) for c in RESULTS)
        for key in ("pushed", "published", "searchable", "duplicates", "lost")
    }
    terminalreporter.write_line(
        "chaos total: " + " ".join(f"{key}={value}" for key, value in total.items())
    )
