"""`python -m portal_runtime.migrate <service>`: what a deployment runs once before a rollout
(the Helm chart's Job) upgrades that service's database with its own settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings


def _migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal_runtime.migrate", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.stack
def test_a_service_database_is_migrated_with_its_own_settings(
    stack_settings: StackSettings,
) -> None:
    env = service_environment(stack_settings, "normalize")
    done = _migrate("normalize", env=env)
    assert done.returncode == 0, done.stderr
    assert "database_migrated" in done.stdout
    wrong = _migrate("normalize", env={**env, "DATABASE_URL": env["DATABASE_URL"] + "_nope"})
    assert wrong.returncode != 0  # a database it cannot reach fails the Job


def test_an_unknown_service_is_a_usage_error() -> None:
    result = _migrate("normalise")
    assert result.returncode == 2
    assert "usage" in result.stderr
