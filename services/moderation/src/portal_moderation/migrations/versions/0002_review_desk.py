"""The review desk: sources and policies, editors and sessions, review items, decisions.

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


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        _timestamp("updated_at"),
        sa.CheckConstraint("policy IN ('pre-review', 'trusted')", name=op.f("ck_sources_policy")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_sources")),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False, comment="argon2id"),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column(
            "source", sa.String(length=64), nullable=True, comment="Only for agency_publisher."
        ),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "role IN ('admin', 'chief_editor', 'editor', 'agency_publisher')",
            name=op.f("ck_users_role"),
        ),
        sa.CheckConstraint(
            "(role = 'agency_publisher') = (source IS NOT NULL)", name=op.f("ck_users_source")
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        _timestamp("created_at"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=op.f("fk_sessions_username_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_username"), "sessions", ["username"], unique=False)
    op.create_table(
        "review_items",
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("section", sa.String(length=64), nullable=True),
        sa.Column(
            "article",
            postgresql.JSONB(),
            nullable=True,
            comment="NormalizedArticle, editors' edits applied.",
        ),
        sa.Column("quality", postgresql.JSONB(), nullable=True),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column(
            "published_revision", sa.Integer(), nullable=True, comment="The revision now public."
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "state IN ('pending', 'auto_published', 'published', 'rejected', 'retracted')",
            name=op.f("ck_review_items_state"),
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_review_items")),
    )
    # The queue is read by state (or source) in arrival order, with keyset pagination.
    op.create_index(
        "ix_review_items_state_received", "review_items", ["state", "received_at", "article_id"]
    )
    op.create_index(
        "ix_review_items_source_received", "review_items", ["source", "received_at", "article_id"]
    )
    op.create_index("ix_review_items_received", "review_items", ["received_at", "article_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "changes",
            postgresql.JSONB(),
            nullable=True,
            comment="Edited fields: {field: {before, after}}.",
        ),
        sa.Column(
            "event_id", sa.Uuid(), nullable=True, comment="The article.reviewed event it emitted."
        ),
        _timestamp("decided_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_article_id"), "decisions", ["article_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_decisions_article_id"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index("ix_review_items_received", table_name="review_items")
    op.drop_index("ix_review_items_source_received", table_name="review_items")
    op.drop_index("ix_review_items_state_received", table_name="review_items")
    op.drop_table("review_items")
    op.drop_index(op.f("ix_sessions_username"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("users")
    op.drop_table("sources")
