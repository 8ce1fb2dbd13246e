"""Pull integration: feed connectors, items, fetch log, backfills, per-source pull state.

Revision ID: 0003_feeds
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_feeds"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _ts(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _source_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["source"], ["sources.code"], name=f"fk_{table}_source_sources", ondelete="CASCADE"
    )


def _connector_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["connector_id"],
        ["feed_connectors.id"],
        name=f"fk_{table}_connector_id_feed_connectors",
        ondelete="SET NULL",
    )


def upgrade() -> None:
    op.create_table(
        "pull_sources",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("categories", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("paused_at"),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("breaker_state", sa.String(length=16), server_default="closed", nullable=False),
        sa.Column("breaker_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("breaker_opened", sa.Integer(), server_default="0", nullable=False),
        _ts("breaker_open_until"),
        _now("updated_at"),
        _source_fk("pull_sources"),
        sa.PrimaryKeyConstraint("source", name="pk_pull_sources"),
    )
    op.create_table(
        "feed_connectors",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("categories", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("section", sa.String(length=64), nullable=True),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("fetch_full_page", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("retract_missing", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("lookback_days", sa.Integer(), server_default="2", nullable=False),
        sa.Column("etag", sa.String(length=1000), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "next_fetch_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        _ts("lease_until"),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        _ts("first_polled_at"),
        _ts("last_fetch_at"),
        _ts("last_success_at"),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error_kind", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("last_error_at"),
        sa.Column("last_warnings", postgresql.JSONB(), server_default="[]", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        _source_fk("feed_connectors"),
        sa.PrimaryKeyConstraint("id", name="pk_feed_connectors"),
        sa.UniqueConstraint("source", "kind", "url", name="uq_feed_connectors_source_kind_url"),
    )
    op.create_index(
        "ix_feed_connectors_due",
        "feed_connectors",
        ["next_fetch_at"],
        postgresql_where=sa.text("enabled"),
    )
    op.create_table(
        "feed_items",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("item_key", sa.Text(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("article_id", sa.String(length=36), nullable=False),
        sa.Column("connector_id", sa.BigInteger(), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column(
            "categories",
            postgresql.ARRAY(sa.String(length=200)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("section", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        _ts("published_at"),
        sa.Column("held_content", postgresql.JSONB(), nullable=True),
        sa.Column("held_raw", sa.LargeBinary(), nullable=True),
        _now("first_seen_at"),
        _now("last_seen_at"),
        sa.Column("missing_polls", sa.Integer(), server_default="0", nullable=False),
        _ts("missing_since"),
        _now("updated_at"),
        _source_fk("feed_items"),
        _connector_fk("feed_items"),
        sa.PrimaryKeyConstraint("source", "key_hash", name="pk_feed_items"),
        sa.UniqueConstraint("id", name="uq_feed_items_id"),
    )
    op.create_index("ix_feed_items_connector_state", "feed_items", ["connector_id", "state"])
    op.create_index("ix_feed_items_source_state", "feed_items", ["source", "state", "id"])
    op.create_table(
        "feed_fetch_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.BigInteger(), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("warnings", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("counts", postgresql.JSONB(), server_default="{}", nullable=False),
        _source_fk("feed_fetch_log"),
        _connector_fk("feed_fetch_log"),
        sa.PrimaryKeyConstraint("id", name="pk_feed_fetch_log"),
    )
    op.create_index("ix_feed_fetch_log_source_started", "feed_fetch_log", ["source", "started_at"])
    op.create_table(
        "feed_backfills",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.BigInteger(), nullable=True),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _now("requested_at"),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("lease_until"),
        sa.Column("counts", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _source_fk("feed_backfills"),
        _connector_fk("feed_backfills"),
        sa.PrimaryKeyConstraint("id", name="pk_feed_backfills"),
    )
    op.create_index("ix_feed_backfills_source_id", "feed_backfills", ["source", "id"])
    op.create_index("ix_feed_backfills_state", "feed_backfills", ["state"])
    # Integration health counts a source's items per section and day.
    op.create_index("ix_articles_source_created_at", "articles", ["source", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_articles_source_created_at", table_name="articles")
    op.drop_table("feed_backfills")
    op.drop_table("feed_fetch_log")
    op.drop_table("feed_items")
    op.drop_table("feed_connectors")
    op.drop_table("pull_sources")
