"""Shared fixtures. Tests that cross a process boundary use the real local stack (Kafka,
OpenSearch, PostgreSQL, S3).

`make test` brings the stack up on its own ports and folder (PORTAL_STACK_PORT_BASE,
PORTAL_STACK_DATA_DIR) before pytest and down after it. Run alone, `stack_settings` starts the
stack if it does not answer, and stops only what it started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from portal_launcher import stack as launcher
from portal_launcher.services import service_environment
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


def service_env(stack: StackSettings, service: str, **overrides: str) -> dict[str, str]:
    """The environment a service gets on this stack (to build its Settings in-process)."""
    env = service_environment(stack, service)
    env.update(overrides)
    return env


@pytest.fixture
def env_for(stack_settings: StackSettings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Set a service's environment for the test, so `Settings()` reads this stack."""

    def apply(service: str, **overrides: str) -> dict[str, str]:
        env = service_env(stack_settings, service, **overrides)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    return apply


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"stack: {os.environ.get('PORTAL_STACK_DATA_DIR', '.stack')} "
        f"port base {os.environ.get('PORTAL_STACK_PORT_BASE', 'default')}"
    )
