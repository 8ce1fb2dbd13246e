"""Settings of the normalize service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pydantic import Field, field_validator

from portal_runtime.settings import PlanCacheMode, ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "normalize"
    http_port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/normalize"
    # A batch's near-duplicate candidates are read in one statement: planned for its batch, it
    # stays a lookup by band and article as the fingerprints grow (ServiceSettings), where a plan
    # kept from a new database's first batches read the whole table each time.
    database_plan_cache_mode: PlanCacheMode = "force_custom_plan"

    # --- images --------------------------------------------------------------------------
    # Where readers fetch stored images: the media bucket behind the portal's front (CDN or
    # reverse proxy). An image's URL is this prefix + its object key.
    media_base_url: str = "/media/"
    # host:port pairs fetched even though they resolve to a non-public address. Empty in
    # production: partners' images come from public addresses only. Tests name their own
    # local image server here; loopback, private, link-local and metadata addresses stay
    # refused for everything else.
    image_fetch_allow_hosts: str = Field(default="", description="Comma-separated host:port.")
    image_fetch_timeout_s: float = 15.0
    image_connect_timeout_s: float = 5.0
    image_max_bytes: int = 15 * 1024 * 1024
    image_max_pixels: int = 40_000_000  # one frame
    # Every frame of an animation together (width x height x frames), counted before decoding;
    # a longer animation keeps its first frame only.
    image_max_total_pixels: int = 100_000_000
    # Images are decoded in worker processes, each limited to this much address space; a job
    # over the time is stopped (its worker killed and replaced).
    image_workers: int = Field(default=2, ge=1, le=64)
    image_worker_memory_mb: int = Field(default=1024, ge=128)
    image_process_timeout_s: float = Field(default=20.0, gt=0)
    # The workers start with the first image and stop after this long without one.
    image_workers_idle_s: float = Field(default=60.0, gt=0)
    # Renditions made on first request at once; more waiting than this get 503 (retry later).
    image_render_queue: int = Field(default=32, ge=1)
    image_max_redirects: int = 5
    image_max_per_article: int = 40
    image_fetch_concurrency: int = 4
    # All of one article's images within this time; the rest are reported as not fetched, so a
    # slow partner site cannot hold the consumer past Kafka's poll interval.
    image_article_budget_s: float = 60.0
    image_widths: str = Field(default="320,640,1024,1600", description="WebP rendition widths.")
    image_user_agent: str = "CongTTDT-Normalize/1.0 (+https://dangcongsan.vn)"
    # A fetched image is reused for this long before the partner's URL is fetched again.
    image_cache_days: int = 30
    # A failed URL is tried again after this long (a later revision may find it fixed).
    image_retry_failed_minutes: int = 10

    # --- near-duplicates ---------------------------------------------------------------------
    # Stories signed by the previous signature scheme (1) are looked up, new articles signed
    # by both schemes, while one of them was first seen within this many days (0: never).
    near_duplicate_v1_days: float = Field(default=30.0, ge=0)

    @field_validator("media_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.image_fetch_allow_hosts.split(",") if h.strip()
        )

    @property
    def rendition_widths(self) -> tuple[int, ...]:
        widths = sorted({int(w) for w in self.image_widths.split(",") if w.strip()})
        return tuple(w for w in widths if 16 <= w <= 4096)
