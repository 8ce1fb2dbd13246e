"""Fixtures of the runtime's stack tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from portal_launcher.credentials import stack_secrets
from portal_launcher.settings import StackSettings


@pytest.fixture
async def scratch_database_url(stack_settings: StackSettings) -> AsyncIterator[str]:
    """The URL of a new, empty database on the stack's PostgreSQL (as its superuser), dropped
    after the test."""
    name = f"runtime_test_{uuid.uuid4().hex[:8]}"
    password = stack_secrets(stack_settings).postgres_password
    admin = {
        "host": stack_settings.host,
        "port": stack_settings.postgres_port,
        "user": "postgres",
        "password": password,
        "database": "postgres",
    }
    conn = await asyncpg.connect(**admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield stack_settings.database_url(name, "postgres", password)
    finally:
        conn = await asyncpg.connect(**admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
