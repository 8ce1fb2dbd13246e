"""Settings of the publishing service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from portal_runtime.settings import PlanCacheMode, ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "publishing"
    http_port: int = 8004
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/publishing"
    # The consumer locks and reads each batch's articles and slugs in one statement: planned for
    # its batch, that stays a lookup as the store grows (ServiceSettings). Reads by the public
    # API plan theirs too, a fraction of a request's cost; most are answered from caches.
    database_plan_cache_mode: PlanCacheMode = "force_custom_plan"
    # Overload protection (README, configuration): public reads per client address; a
    # server-side frontend or CDN in front must be in TRUSTED_PROXIES and send X-Forwarded-For.
    rate_limit_per_ip: str = "1200/minute"
    max_in_flight_requests: int = Field(default=128, ge=0)

    public_base_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Public origin of the portal: absolute links in RSS, sitemaps and the API.",
    )
    publication_name: str = Field(
        default="Cổng Thông tin điện tử Đảng Cộng sản Việt Nam",
        description="news:publication name in the Google News sitemap and the RSS copyright.",
    )

    # Page sizes: `limit` above the maximum is capped, not refused.
    page_size_default: int = Field(default=20, ge=1, le=100)
    page_size_max: int = Field(default=100, ge=1, le=500)
    home_articles_per_block: int = Field(default=8, ge=1, le=50)
    home_articles_per_leader: int = Field(default=3, ge=1, le=20)
    feed_items: int = Field(default=50, ge=1, le=200)
    sitemap_urls_per_file: int = Field(default=50_000, ge=1, le=50_000)  # protocol limit
    news_sitemap_hours: int = Field(default=48, ge=1, le=48)  # Google News: last two days
    news_sitemap_max_urls: int = Field(default=1000, ge=1, le=1000)  # Google News limit

    # Cache-Control (seconds). max-age per kind of representation, for browsers; s-maxage for
    # the edge cache, which the purger invalidates on every change (so it only bounds how stale
    # the edge gets while the purger is down); a stale copy may be served while a fresh one is
    # fetched (stale-while-revalidate), or while this service fails (stale-if-error).
    cache_list_s: int = Field(default=60, ge=0)
    cache_article_s: int = Field(default=300, ge=0)
    cache_feed_s: int = Field(default=300, ge=0)
    cache_edge_s: int = Field(default=300, ge=0)
    cache_stale_while_revalidate_s: int = Field(default=600, ge=0)
    cache_stale_if_error_s: int = Field(default=86_400, ge=0)
    # Rendered public pages kept in this process (pagecache.py): invalidated by every change of
    # the store, expired after the TTL (0 turns the cache off), LRU beyond the size.
    page_cache_ttl_s: float = Field(default=60.0, ge=0)
    page_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)

    # Key of the cursors' integrity tag. A cursor only carries a public position in a list, so
    # this is not a secret worth guarding; it makes tampering detectable (400). Set the same
    # value on every replica so cursors survive load balancing and restarts.
    cursor_key: SecretStr = SecretStr("portal-publishing-cursor")

    # normalize's HTTP API: it makes an image's renditions on their first request. Unset, a
    # rendition not yet stored is 404.
    normalize_url: str | None = None

    admin_max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/")
