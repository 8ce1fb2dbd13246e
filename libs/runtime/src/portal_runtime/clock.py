"""The services' clock: an aware UTC datetime (times are stored in UTC, shown in Vietnam's)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
