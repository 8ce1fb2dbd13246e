"""Source rules, image cache, near-duplicate fingerprints; duplicate_of on articles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "normalized_articles",
        sa.Column(
            "duplicate_of",
            sa.String(length=64),
            nullable=True,
            comment="Article id of a near-duplicate.",
        ),
    )
    op.create_table(
        "source_rules",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "categories",
            postgresql.JSONB(),
            nullable=False,
            comment="Category name -> portal section.",
        ),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("default_section", sa.String(length=64), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_source_rules")),
    )
    op.create_table(
        "image_cache",
        sa.Column("url_hash", sa.String(length=64), nullable=False, comment="SHA-256 of the URL."),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column(
            "sha256", sa.String(length=64), nullable=True, comment="Of the bytes as fetched."
        ),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("renditions", postgresql.JSONB(), nullable=True, comment="Width -> object key."),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column(
            "code", sa.String(length=32), nullable=True, comment="Failure code; NULL when stored."
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("url_hash", name=op.f("pk_image_cache")),
    )
    op.create_table(
        "fingerprints",
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("duplicate_of", sa.String(length=64), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_fingerprints")),
    )
    op.create_table(
        "fingerprint_bands",
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("band", "key", "article_id", name=op.f("pk_fingerprint_bands")),
    )
    op.create_index(
        op.f("ix_fingerprint_bands_article_id"), "fingerprint_bands", ["article_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fingerprint_bands_article_id"), table_name="fingerprint_bands")
    op.drop_table("fingerprint_bands")
    op.drop_table("fingerprints")
    op.drop_table("image_cache")
    op.drop_table("source_rules")
    op.drop_column("normalized_articles", "duplicate_of")
