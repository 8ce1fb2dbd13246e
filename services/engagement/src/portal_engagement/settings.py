"""Settings of the engagement service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from portal_engagement.screening import DEFAULT_WORD_LIST
from portal_runtime.ratelimit import parse_rules
from portal_runtime.settings import ServiceSettings

DEFAULT_CATALOG = Path(__file__).parent / "data" / "catalog.yaml"


class Settings(ServiceSettings):
    service_name: str = "engagement"
    http_port: int = 8005
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/engagement"

    # Screening data (YAML): banned and suspect words; default topics applied at start-up.
    screening_words_path: Path = DEFAULT_WORD_LIST
    catalog_path: Path | None = Field(
        default=DEFAULT_CATALOG, description="Default Q&A and forum topics; empty to skip."
    )

    # Rate limits ("N/second|minute|hour|day", several joined with ';'); empty = no limit.
    rate_limit_submit_per_ip: str = "10/minute;60/hour;300/day"
    rate_limit_submit_per_identity: str = "5/minute;30/hour;100/day"
    rate_limit_report_per_ip: str = "20/minute;200/day"
    rate_limit_read_per_ip: str = "1200/minute"
    # The shared per-address limit of every request (overload.py) stays off: the rules above
    # are finer. MAX_IN_FLIGHT_REQUESTS (64) still sheds load; live streams hold no slot.
    max_live_streams_per_ip: int = Field(default=20, ge=1)
    max_live_streams: int = Field(default=10_000, ge=1)

    # Live dialogues: readers' keep-alive, the fallback poll if a notification is missed, and
    # how long after its end a dialogue's stream still stays open.
    live_ping_s: float = Field(default=15.0, gt=0)
    live_poll_s: float = Field(default=10.0, gt=0)
    live_grace_minutes: float = Field(default=30.0, ge=0)

    # Salt of the hashed client addresses kept for report de-duplication. Required: without a
    # secret salt the 2^32 IPv4 digests are reversed in minutes.
    client_hash_salt: SecretStr = Field(
        description="Secret salt of the stored client-address digests (at least 16 characters; "
        "the same on every instance). No default: the service refuses to start without it.",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("client_hash_salt")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("CLIENT_HASH_SALT must be a secret of at least 16 characters")
        return value

    @field_validator(
        "rate_limit_submit_per_ip",
        "rate_limit_submit_per_identity",
        "rate_limit_report_per_ip",
        "rate_limit_read_per_ip",
    )
    @classmethod
    def _valid_rules(cls, value: str) -> str:
        parse_rules(value)  # raises ValueError with the wrong part
        return value

    @field_validator("catalog_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value
