"""Settings of the normalize service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from portal_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "normalize"
    http_port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/normalize"
