"""Tables of pull integration (migrations/versions/0003_feeds.py), on ingest's metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from portal_ingest.db import metadata


def _now(name: str) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


def _ts(name: str) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=True)


# Per source: the source-wide category mapping, pause, and the circuit breaker.
pull_sources = Table(
    "pull_sources",
    metadata,
    Column("source", String(64), ForeignKey("sources.code", ondelete="CASCADE"), primary_key=True),
    Column("categories", JSONB, nullable=False, server_default="{}"),
    Column("paused", Boolean, nullable=False, server_default=false()),
    _ts("paused_at"),
    Column("paused_reason", Text, nullable=True),
    Column("breaker_state", String(16), nullable=False, server_default="closed"),
    Column("breaker_failures", Integer, nullable=False, server_default="0"),
    Column("breaker_opened", Integer, nullable=False, server_default="0"),
    _ts("breaker_open_until"),
    _now("updated_at"),
)

# Each feed or sitemap of a source, with its schedule and the state of its last poll.
feed_connectors = Table(
    "feed_connectors",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source", String(64), ForeignKey("sources.code", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("categories", JSONB, nullable=False, server_default="{}"),
    Column("section", String(64), nullable=True),
    Column("interval_s", Integer, nullable=False),
    Column("fetch_full_page", Boolean, nullable=False, server_default=false()),
    Column("retract_missing", Boolean, nullable=False, server_default=false()),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("lookback_days", Integer, nullable=False, server_default="2"),
    Column("etag", String(1000), nullable=True),
    Column("last_modified", String(100), nullable=True),
    Column("body_hash", String(64), nullable=True),
    Column("next_fetch_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _ts("lease_until"),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    _ts("first_polled_at"),
    _ts("last_fetch_at"),
    _ts("last_success_at"),
    Column("last_outcome", String(16), nullable=True),
    Column("last_http_status", Integer, nullable=True),
    Column("last_error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    _ts("last_error_at"),
    Column("last_warnings", JSONB, nullable=False, server_default="[]"),
    _now("created_at"),
    _now("updated_at"),
    UniqueConstraint("source", "kind", "url", name="uq_feed_connectors_source_kind_url"),
    Index("ix_feed_connectors_due", "next_fetch_at", postgresql_where=text("enabled")),
)

# Every item a connector listed: identity, what was done with it, held content.
feed_items = Table(
    "feed_items",
    metadata,
    Column("source", String(64), ForeignKey("sources.code", ondelete="CASCADE"), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("id", BigInteger, Identity(), nullable=False, unique=True),
    Column("item_key", Text, nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("article_id", String(36), nullable=False),
    Column(
        "connector_id",
        BigInteger,
        ForeignKey("feed_connectors.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("url", String(2000), nullable=True),
    Column("title", String(500), nullable=True),
    Column("categories", ARRAY(String(200)), nullable=False, server_default="{}"),
    Column("section", String(64), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("revision", Integer, nullable=True),
    _ts("published_at"),
    Column("held_content", JSONB, nullable=True),
    Column("held_raw", LargeBinary, nullable=True),
    _now("first_seen_at"),
    _now("last_seen_at"),
    Column("missing_polls", Integer, nullable=False, server_default="0"),
    _ts("missing_since"),
    _now("updated_at"),
    PrimaryKeyConstraint("source", "key_hash", name="pk_feed_items"),
    Index("ix_feed_items_connector_state", "connector_id", "state"),
    Index("ix_feed_items_source_state", "source", "state", "id"),
)

# One row per poll (and backfill page batch): the source's error rate and last errors.
feed_fetch_log = Table(
    "feed_fetch_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source", String(64), ForeignKey("sources.code", ondelete="CASCADE"), nullable=False),
    Column(
        "connector_id",
        BigInteger,
        ForeignKey("feed_connectors.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("url", String(2000), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error_kind", String(32), nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("message", Text, nullable=True),
    Column("warnings", JSONB, nullable=False, server_default="[]"),
    Column("counts", JSONB, nullable=False, server_default="{}"),
    Index("ix_feed_fetch_log_source_started", "source", "started_at"),
)

# Operator-requested backfills of a date range from a source's sitemaps.
feed_backfills = Table(
    "feed_backfills",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source", String(64), ForeignKey("sources.code", ondelete="CASCADE"), nullable=False),
    Column(
        "connector_id",
        BigInteger,
        ForeignKey("feed_connectors.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("date_from", Date, nullable=False),
    Column("date_to", Date, nullable=False),
    Column("state", String(16), nullable=False),
    _now("requested_at"),
    _ts("started_at"),
    _ts("finished_at"),
    _ts("lease_until"),
    Column("counts", JSONB, nullable=False, server_default="{}"),
    Column("last_error", Text, nullable=True),
    Index("ix_feed_backfills_source_id", "source", "id"),
    Index("ix_feed_backfills_state", "state"),
)
