"""Settings of the moderation service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pydantic import Field

from portal_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "moderation"
    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/moderation"

    session_ttl_hours: float = Field(default=12.0, gt=0, description="Editors' sign-in lifetime.")
    login_max_failures: int = Field(
        default=10, ge=1, description="Failed sign-ins in a row before an account is locked."
    )
    login_lockout_minutes: float = Field(default=15.0, gt=0)
