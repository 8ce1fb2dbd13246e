"""Lines of the scale test (partition moves, the total), printed at the end of the run by the
scale conftest, so CI's log shows them also when the test passes."""

from __future__ import annotations

LINES: list[str] = []
