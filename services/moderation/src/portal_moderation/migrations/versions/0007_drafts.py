"""Articles written in the desk for an agency (drafts, then what was submitted to ingest).

Revision ID: 0007_drafts
Revises: 0006_sign_in_failures
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_drafts"
down_revision: str | None = "0006_sign_in_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("draft_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("article_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("section", sa.String(64), nullable=True),
        sa.Column("author", sa.String(300), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("lead_image_url", sa.Text(), nullable=True),
        sa.Column("lead_caption", sa.Text(), nullable=True),
        sa.Column("submitted_revision", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("editor_comment", sa.Text(), nullable=True),
        sa.Column("comment_by", sa.String(64), nullable=True),
        sa.Column("comment_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'retracted')", name=op.f("ck_drafts_state")
        ),
        sa.PrimaryKeyConstraint("draft_id", name=op.f("pk_drafts")),
        sa.UniqueConstraint("external_id", name=op.f("uq_drafts_external_id")),
        sa.UniqueConstraint("article_id", name=op.f("uq_drafts_article_id")),
    )
    op.create_index("ix_drafts_source_updated", "drafts", ["source", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_drafts_source_updated", table_name="drafts")
    op.drop_table("drafts")
