"""Newest normalised revision per article, with its quality report.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "normalized_articles",
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column(
            "event_id", sa.Uuid(), nullable=False, comment="The article.ingested event normalised."
        ),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("quality", postgresql.JSONB(), nullable=True),
        sa.Column(
            "normalized_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_normalized_articles")),
    )
    op.create_index(
        op.f("ix_normalized_articles_source"), "normalized_articles", ["source"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_normalized_articles_source"), table_name="normalized_articles")
    op.drop_table("normalized_articles")
