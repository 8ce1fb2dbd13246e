"""Cross-service tests run against the real local stack (Kafka, OpenSearch, PostgreSQL, S3).

`make test` brings the stack up on its own ports and folder (PORTAL_STACK_PORT_BASE,
PORTAL_STACK_DATA_DIR) before pytest and down after it. Run alone, these fixtures start the stack
if it does not answer, and stop only what they started.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portal_launcher import stack as launcher
from portal_launcher.settings import StackSettings


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[StackSettings]:
    settings = StackSettings()
    comps = launcher.infrastructure(settings)
    started = not all(c.is_running() for c in comps)
    if started:
        launcher.stack_up(settings, say=lambda _: None)
    try:
        yield settings
    finally:
        if started:
            launcher.stack_down(settings, say=lambda _: None)
