"""`python -m portal_runtime.migrate <service>`: what a deployment runs once before a rollout
(the Helm chart's Job) upgrades that service's database with its own settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_runtime.db import make_engine


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


@pytest.mark.stack
@pytest.mark.parametrize(
    "service", ["ingest", "normalize", "moderation", "publishing", "engagement"]
)
async def test_an_event_waits_in_the_outbox_uncompressed(
    stack_settings: StackSettings, service: str
) -> None:
    """A few KiB event is stored in its row as it is: nothing to compress on insert and
    decompress for the relay, for a row that lives until it is sent."""
    env = service_environment(stack_settings, service)
    done = _migrate(service, env=env)
    assert done.returncode == 0, done.stderr
    engine = make_engine(env["DATABASE_URL"], pool_size=1)
    value = ("Tin thử nghiệm của Cổng thông tin điện tử. " * 120).encode()  # ~5 KiB, compressible
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                stored = (
                    await conn.execute(
                        text(
                            "INSERT INTO outbox (topic, key, value) VALUES ('t', 'k', :value) "
                            "RETURNING pg_column_compression(value), pg_column_size(value)"
                        ),
                        {"value": value},
                    )
                ).one()
            finally:
                await transaction.rollback()  # nothing left for the service's relay
    finally:
        await engine.dispose()
    assert stored[0] is None  # not compressed
    assert stored[1] >= len(value)
