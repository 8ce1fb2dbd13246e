"""Scale-out tests: several instances of every service on the real stack (the e2e fixture)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import partner_images, portal  # noqa: F401 - the e2e tests' fixtures
from tests.scale.report import LINES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LINES:
        terminalreporter.section("scale: rolling restart and scaling")
        for line in LINES:
            terminalreporter.write_line(line)
