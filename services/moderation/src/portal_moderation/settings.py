"""Settings of the moderation service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from portal_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "moderation"
    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/moderation"
    # Overload protection (README, configuration): the JSON API per editor's bearer token
    # (editors of one newsroom share an address, so no per-address limit by default).
    rate_limit_per_api_key: str = "1200/minute"

    session_ttl_hours: float = Field(default=12.0, gt=0, description="Editors' sign-in lifetime.")
    # Sign-in throttling (README, for editors): failures are counted per client address over a
    # sliding window, before any password is hashed; an account itself is never locked.
    login_max_failures: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins under one name from one address, within the window, before "
        "that address is refused for that name.",
    )
    login_max_failures_per_address: int = Field(
        default=20,
        ge=0,
        description="Failed sign-ins under any names from one address, within the window, "
        "before that address is refused. 0: no per-address limit.",
    )
    login_lockout_minutes: float = Field(
        default=15.0, gt=0, description="The sliding window of the two limits above."
    )
    password_hashes_at_once: int = Field(
        default=4, ge=1, description="Password hashes (64 MiB each) computed at once."
    )
    password_wait_s: float = Field(
        default=2.0,
        gt=0,
        description="How long a sign-in waits for a hashing slot before 503 with Retry-After.",
    )

    # The editors' web desk.
    ingest_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Ingest's base URL: the sources screen calls its admin API (API keys, "
        "Kafka credentials, granted sections) server-side with INGEST_ADMIN_TOKEN.",
    )
    ingest_admin_token: SecretStr = Field(
        default=SecretStr(""),
        description="Ingest's admin token (each service has its own): the desk administers "
        "partners through ingest. Empty: those screens say ingest refused.",
    )
    publishing_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Publishing's base URL: section names and standard sections (GET /v1/site).",
    )
    peer_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of calls to ingest.")
    cookie_secure: bool | None = Field(
        default=None,
        description="Secure flag of the desk's cookies; unset: set when the request is HTTPS.",
    )
    claim_minutes: float = Field(
        default=10.0, gt=0, description="How long an opened item shows as taken by its editor."
    )
    jaeger_query_url: str = Field(
        default="",
        description="Base URL of Jaeger's HTTP query API (e.g. http://127.0.0.1:16686): the "
        "article journey page reads one article's trace from it, server-side. Empty: the page "
        "shows the journey without the trace.",
    )
    jaeger_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of calls to Jaeger.")

    @field_validator("jaeger_query_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc
        ):
            raise ValueError("JAEGER_QUERY_URL must be an http(s) URL")
        return value
