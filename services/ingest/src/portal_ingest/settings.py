"""Settings of the ingest service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pydantic import Field, field_validator

from portal_contracts.topics import (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    ARTICLE_REVIEWED,
)
from portal_ingest.pull.addresses import parse_target
from portal_runtime.admission import Hop
from portal_runtime.settings import PlanCacheMode, ServiceSettings

MIB = 1024 * 1024


class Settings(ServiceSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ingest"
    # Every statement of the intake and of the status consumers serves a whole batch: planned
    # for its batch, a lookup of its articles stays a lookup as the tables grow (ServiceSettings).
    database_plan_cache_mode: PlanCacheMode = "force_custom_plan"
    # Overload protection (README, configuration): per partner API key, and per address for
    # every caller (floods of made-up keys); the admin API with the admin token is exempt.
    rate_limit_per_api_key: str = "3000/minute;100000/hour"
    rate_limit_per_ip: str = "6000/minute"

    s3_raw_bucket: str = Field(
        default="portal-raw",
        description="Bucket where every accepted partner payload is archived exactly as received.",
    )
    kafka_partner_bootstrap_servers: str = Field(
        default="127.0.0.1:9094",
        description="The SASL_SSL listener partners connect to (handed out with credentials).",
    )
    kafka_partner_ca_file: str = Field(
        default="",
        description="CA certificate (PEM) that signs the partner listener's certificate, handed "
        "out with credentials so partners can verify the broker; empty: a public CA signs it.",
    )
    # Bytes per second one partner may produce; beyond it the broker throttles that partner only.
    partner_produce_byte_rate: int = Field(default=1024 * 1024, ge=1024)

    # A partner request body (or Kafka message value) larger than this is refused (413).
    max_body_bytes: int = Field(default=2 * MIB, ge=1024)
    # A batch push (POST /v1/articles/batch): at most this many items (a deployment may lower
    # it, not raise it) and this many bytes; each item is held to MAX_BODY_BYTES.
    batch_max_items: int = Field(default=200, ge=1, le=200)
    batch_max_bytes: int = Field(default=16 * MIB, ge=1024)
    # What an API key grants is remembered this long (callers.py): a key revoked or an agency
    # deactivated through another instance is refused within it (at once through this one).
    api_key_cache_s: float = Field(default=2.0, ge=0, le=60)
    # Raw archive writes of one partner Kafka batch (or one group of pushes) under way at once.
    raw_archive_concurrency: int = Field(default=8, ge=1)
    # The originals accepted together are archived as one object per agency (raw_packs.py), of
    # at most this many bytes (a larger one is split; an original alone keeps its own object).
    raw_pack_max_bytes: int = Field(default=8 * MIB, ge=1024)
    # Concurrent single pushes (REST) are accepted in groups (intake_groups.py): a group takes
    # the requests that arrive within PUSH_GROUP_MAX_WAIT_MS of its first, PUSH_GROUP_MAX_ITEMS
    # at most (1: each request alone), with PUSH_GROUP_IN_FLIGHT groups under way at once.
    push_group_max_items: int = Field(default=32, ge=1, le=500)
    push_group_max_wait_ms: float = Field(default=2.0, ge=0, le=100)
    # One: the requests that arrive while a group is under way form the next, as large as they
    # come. More in flight make smaller groups, each paying a state read, an archive write, a
    # transaction and a relay round.
    push_group_in_flight: int = Field(default=1, ge=1, le=32)
    # The partner status and journey consumers gather a batch for this long after its first
    # event (KAFKA_BATCH_MAX_WAIT_MS for the others): fewer, larger transactions, for a status
    # or a journey stage that shows this much later at most.
    follow_batch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    # The partner topics' consumer gathers a batch for this long after its first message: a
    # batch's state read, archive pack, transaction and outbox insert serve more messages (an
    # agency's messages are read in bursts), for an article that enters the pipeline this much
    # later at most.
    partner_batch_max_wait_ms: int = Field(default=100, ge=0, le=10_000)

    # Partner Kafka intake: one topic per agency, consumed by pattern.
    partner_consumer_group: str = "ingest-partners"
    # Low so that a topic provisioned after start is consumed within seconds.
    partner_metadata_max_age_ms: int = Field(default=5000, ge=500)
    partner_topic_partitions: int = Field(default=3, ge=1)
    partner_topic_retention_ms: int = 7 * 24 * 3600 * 1000
    # -1: the cluster's default replication factor (1 locally, 3 in production).
    partner_topic_replication_factor: int = -1
    kafka_admin_timeout_ms: int = 15000

    # -- fairness between agencies (fairness.py, docs/pipeline.md) ---------------------------
    # An agency sending more than this many items within the window is in a burst: its items
    # take the bulk lane until its pace falls to half of it (per ingest instance).
    burst_items: int = Field(default=30, ge=1)
    burst_window_s: float = Field(default=10.0, gt=0)
    # The bulk lane enters the pipeline while the queueing it would cause downstream stays
    # near this delay: the consumer lag of these hops ('<group>:<topic>', in pipeline order;
    # the last one's commits are the drain rate). Empty: the bulk lane is only lower priority.
    bulk_lane_hops: list[str] = Field(
        default_factory=lambda: [
            f"normalize:{ARTICLE_INGESTED.name}",
            f"moderation:{ARTICLE_NORMALIZED.name}",
            f"publishing:{ARTICLE_REVIEWED.name}",
            f"search:{ARTICLE_PUBLISHED.name}",
        ]
    )
    bulk_lane_target_delay_s: float = Field(default=2.0, gt=0)
    bulk_lane_min_window: int = Field(default=20, ge=1)
    bulk_lane_max_window: int = Field(default=5000, ge=1)
    bulk_lane_measure_interval_s: float = Field(default=0.5, gt=0)
    # While the pipeline is empty and the relay sends nothing, its lag is measured only this
    # often (the first row sent brings the next measurement back within the interval above);
    # under the window's 5 s staleness, so a backfill's first rows never wait for a measurement.
    bulk_lane_idle_measure_interval_s: float = Field(default=4.0, gt=0)

    # -- the desk channel (desk_api.py): articles written in the portal's desk ----------------
    desk_media_base_url: str = Field(
        default="http://127.0.0.1:8001/v1/desk-media/",
        description="Where normalize fetches the images uploaded in the desk (this service's "
        "/v1/desk-media/ as normalize reaches it; normalize must allow that host).",
    )
    desk_image_max_bytes: int = Field(default=5 * MIB, ge=1024)
    desk_image_max_pixels: int = Field(default=40_000_000, ge=10_000)

    # Page size bounds of the partner listing endpoints. The partner API documents 200 as the
    # largest page; a deployment may lower it, never raise it.
    page_size_default: int = 50
    page_size_max: int = Field(default=200, ge=1, le=200)

    # -- pull integration: feeds and sitemaps (pull/) -----------------------------------------
    feed_scheduler_enabled: bool = Field(
        default=True, description="Poll configured feeds in the background (off: fetch-now only)."
    )
    feed_min_interval_s: int = Field(default=60, ge=1, description="Shortest poll interval.")
    feed_tick_s: float = Field(default=1.0, gt=0, description="How often the scheduler looks.")
    feed_max_concurrency: int = Field(default=32, ge=1, description="Polls running at once.")
    feed_user_agent: str = Field(
        default=(
            "CongTTDT-Ingest/1.0 (feed integration of the national Party e-portal; "
            "contact: integration desk)"
        ),
        min_length=8,
        description="The User-Agent of every request, and the name robots.txt rules match.",
    )
    feed_robots_agent: str = Field(
        default="CongTTDT-Ingest", description="Product token matched against robots.txt."
    )
    feed_connect_timeout_s: float = Field(default=5.0, gt=0)
    feed_read_timeout_s: float = Field(default=15.0, gt=0)
    # One whole request (every redirect hop, a slow drip of bytes) never takes longer than this.
    feed_request_timeout_s: float = Field(default=30.0, gt=0)
    feed_max_bytes: int = Field(default=10 * MIB, ge=1024, description="Largest feed or sitemap.")
    page_max_bytes: int = Field(default=5 * MIB, ge=1024, description="Largest article page.")
    robots_max_bytes: int = Field(default=512 * 1024, ge=1024)
    feed_max_redirects: int = Field(default=5, ge=0, le=20)
    # Retries within one fetch (connection errors, timeouts, 5xx, 429), with backoff.
    feed_retries: int = Field(default=2, ge=0, le=10)
    feed_retry_backoff_s: float = Field(default=1.0, ge=0)
    # Spread of each poll time around the connector's interval (0.1: +-10%).
    feed_jitter: float = Field(default=0.1, ge=0, le=0.5)
    # After a failed poll the connector waits interval * 2^(failures-1), at most this long.
    feed_max_backoff_s: int = Field(default=6 * 3600, ge=1)
    # Circuit breaker per source: this many failed polls in a row open it for a cool-down that
    # doubles each time it opens again, up to the maximum.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: int = Field(default=600, ge=1)
    breaker_max_cooldown_s: int = Field(default=6 * 3600, ge=1)
    # A poll holds its connector this long (another instance may take it over after).
    feed_lease_s: int = Field(default=900, ge=30)
    max_running_backfills: int = Field(default=2, ge=1)
    # An operator's "fetch now" answers after the polls end, or after this long (then 202).
    fetch_now_wait_s: float = Field(default=120.0, gt=0)
    robots_cache_s: int = Field(default=3600, ge=0)
    # Least time between two requests to one site (robots.txt Crawl-delay raises it, up to 60 s).
    host_min_delay_s: float = Field(default=1.0, ge=0)
    max_items_per_poll: int = Field(default=200, ge=1, le=5000)
    max_pages_per_poll: int = Field(default=50, ge=1, le=5000)
    page_max_attempts: int = Field(default=5, ge=1)
    max_sitemap_urls: int = Field(default=50_000, ge=1)
    max_child_sitemaps: int = Field(default=50, ge=1)
    max_backfill_urls: int = Field(default=20_000, ge=1)
    # A vanished item is retracted (when the connector's policy says so) only after this many
    # successful polls without it, so one odd answer of the partner's site retracts nothing.
    retract_after_missing_polls: int = Field(default=2, ge=1)
    fetch_log_retention_days: int = Field(default=30, ge=1)
    # Addresses (ip:port, IPv6 as [::1]:port) that may be fetched although internal: only for
    # tests and benchmarks with their own local servers. Empty (the default) refuses them all.
    feed_allowed_internal_targets: list[str] = Field(default_factory=list)
    # The standard sections of every partner sub-site (integration health counts them).
    standard_sections: list[str] = Field(
        default_factory=lambda: ["ct-tin-tuc-hoat-dong", "ct-xay-dung-dang", "ct-van-ban-tai-lieu"]
    )
    source_time_zone: str = "Asia/Ho_Chi_Minh"

    @field_validator("bulk_lane_hops")
    @classmethod
    def _hops_are_group_topic(cls, value: list[str]) -> list[str]:
        for hop in value:
            Hop.parse(hop)  # ValueError names the bad entry
        return value

    @field_validator("feed_allowed_internal_targets")
    @classmethod
    def _targets_are_ip_port(cls, value: list[str]) -> list[str]:
        for target in value:
            parse_target(target)  # ValueError names the bad entry
        return value
