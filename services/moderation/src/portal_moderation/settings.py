"""Settings of the moderation service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from portal_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "moderation"
    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/moderation"
