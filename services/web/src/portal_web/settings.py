"""Settings of the website (environment variables, same names in docker-compose).

The website owns no data: it needs the base URLs of the three public APIs it reads, and it
fetches nothing else (every outgoing request is one of these bases plus a path it builds).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from portal_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "web"
    http_port: int = 8007

    publishing_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Publishing's base URL: site structure, home, sections, articles, /media/.",
    )
    search_url: str = Field(default="http://127.0.0.1:8006", description="Search's base URL.")
    engagement_url: str = Field(
        default="http://127.0.0.1:8005",
        description="Engagement's base URL: Q&A, dialogues (and their live stream), feedback, "
        "forum, comments, status links. It must list this website in TRUSTED_PROXIES, since "
        "the website forwards each reader's address (X-Forwarded-For) for its rate limits.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8007",
        description="The portal's public address (canonical links, OpenGraph, JSON-LD).",
    )
    site_name: str = "Cổng Thông tin điện tử Đảng Cộng sản Việt Nam"
    api_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of each API call.")
    api_cache_s: float = Field(
        default=10.0,
        ge=0,
        description="How long answers that may be a little old are reused across readers: the "
        "site structure (read by every page) and the side blocks (the home page's engagement "
        "block, topics, related articles). 0: never.",
    )

    # Forms: the CSRF token is an HMAC of a random cookie (path /gui) under this secret.
    csrf_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Key of the forms' CSRF tokens; every instance must share it. Empty: a "
        "random key per process (tokens do not survive a restart or cross instances).",
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Secure flag of the form cookie; unset: set when the request is HTTPS.",
    )

    # Caching by an edge cache (Cache-Control of public pages; the edge purges by surrogate key).
    cache_max_age_s: int = Field(default=60, ge=0, description="Browsers' max-age of pages.")
    cache_s_maxage_s: int = Field(
        default=600, ge=0, description="Shared caches' s-maxage of pages (purged by key)."
    )
    cache_live_s: int = Field(
        default=10,
        ge=0,
        description="max-age and s-maxage of pages that change without a purge: search, a live "
        "dialogue, retracted articles.",
    )
    cache_stale_while_revalidate_s: int = Field(default=60, ge=0)
    cache_stale_if_error_s: int = Field(default=86_400, ge=0)
    live_refresh_s: int = Field(
        default=20,
        ge=5,
        description="Refresh interval of a live dialogue's page for readers without JavaScript.",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest form post.")

    @field_validator("publishing_url", "search_url", "engagement_url", "public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value
