"""The article journey: every article event ingest sees, with its trace id (journey.py).

Revision ID: 0003_journey
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_journey"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "article_journey",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("article_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_journey")),
        sa.UniqueConstraint("event_id", name=op.f("uq_article_journey_event_id")),
    )
    op.create_index(
        "ix_article_journey_article_id_occurred_at",
        "article_journey",
        ["article_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_article_journey_article_id_occurred_at", table_name="article_journey")
    op.drop_table("article_journey")
