"""The outbox and inbox tables (portal_runtime.outbox), created by each service's first migration.

The runtime owns these tables, so their first version is defined once here. This module is
frozen like a migration: a later change to the tables is a new migration in each service, never
an edit here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_messaging_tables() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )


def drop_messaging_tables() -> None:
    op.drop_table("processed_events")
    op.drop_table("outbox")


def add_relay_lanes_and_dead_table() -> None:
    """Second step: the relay's scheduling columns, and ``outbox_dead`` for unsendable rows."""
    op.add_column(
        "outbox", sa.Column("lane", sa.SmallInteger(), server_default="0", nullable=False)
    )
    op.add_column("outbox", sa.Column("fair_key", sa.String(length=64), nullable=True))
    op.create_table(
        "outbox_dead",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lane", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("fair_key", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "set_aside_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_dead")),
    )


def drop_relay_lanes_and_dead_table() -> None:
    op.drop_table("outbox_dead")
    op.drop_column("outbox", "fair_key")
    op.drop_column("outbox", "lane")


# The largest row PostgreSQL keeps in its page as it is (an 8 KiB page less its headers).
_INLINE_ROW_BYTES = 8160


def keep_outbox_rows_inline() -> None:
    """Third step: outbox rows up to a page are stored as they are, not compressed.

    A row lives from its commit until the relay has sent it (milliseconds): compressing a 5 KiB
    event on insert and decompressing it for the relay cost CPU and saved no lasting space.
    Larger rows are still compressed and stored out of line, as before.
    """
    keep_rows_inline("outbox")


def compress_outbox_rows_again() -> None:
    compress_rows_again("outbox")


def keep_rows_inline(table: str) -> None:
    """A table's rows up to a page (an 8 KiB page less its headers) stay in it uncompressed;
    larger ones are compressed and stored out of line as before (more disk, less CPU)."""
    op.execute(f"ALTER TABLE {table} SET (toast_tuple_target = {_INLINE_ROW_BYTES})")


def compress_rows_again(table: str) -> None:
    op.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
