"""Settings of the search service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pydantic import Field

from portal_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "search"
    http_port: int = 8006
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/search"
    # Overload protection (README, configuration): searches per client address.
    rate_limit_per_ip: str = "600/minute"
    # Answers of the public search kept per normalised search (resultcache.py): at most this
    # old for writes of another instance (this instance's own writes drop them); 0 = off.
    search_cache_ttl_s: float = Field(default=5.0, ge=0)
    search_cache_max_entries: int = Field(default=1000, ge=0)

    index_alias: str = Field(
        default="articles",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Alias the service reads and writes; physical indices are <alias>-v<time>.",
    )
    index_shards: int = Field(default=1, ge=1, le=64)
    # 0 on a single-node local stack; set 1+ in production.
    index_replicas: int = Field(default=0, ge=0, le=5)
    # How soon a written article is searchable (README, "How soon an article is searchable"):
    # the consumer asks for a refresh of the article index after each write, at once after a
    # quiet spell and otherwise at most once per INDEX_REFRESH_MIN_GAP_MS (each refresh writes
    # a small segment that merges rewrite later: fewer refreshes, less OpenSearch CPU per
    # article). The index's own periodic refresh, INDEX_REFRESH_INTERVAL, is then only a safety
    # net; with INDEX_REFRESH_ON_WRITE=false it is the only refresh (250ms suits that).
    index_refresh_on_write: bool = True
    index_refresh_min_gap_ms: int = Field(default=250, ge=10, le=60_000)
    index_refresh_interval: str = Field(default="10s", pattern=r"^[1-9][0-9]*(ms|s)$")
    # How long an article index _bulk may take before it is given up and retried (OpenSearch
    # still carries out the one given up on, so a retry repeats all its work): longer than
    # OPENSEARCH_TIMEOUT_S, which suits searches (README, "Settings").
    index_bulk_timeout_s: float = Field(default=60.0, gt=0)
    # Longer bodies are cut before indexing: highlighting re-analyses at most ~1M characters.
    index_max_body_chars: int = Field(default=500_000, ge=1_000, le=900_000)

    # Rebuild (POST /admin/v1/reindex): replay batch size, how long a replay may make no progress,
    # when another instance's unfinished build counts as abandoned, and how long the old index
    # stays after the alias moved (searches already routed to it finish).
    reindex_batch_size: int = Field(default=500, ge=1, le=5_000)
    reindex_stall_timeout_s: float = Field(default=60.0, gt=0)
    reindex_stale_after_s: float = Field(default=3600.0, gt=0)
    reindex_delete_grace_s: float = Field(default=1.0, ge=0)
