"""The submissions desk: questions, dialogue questions, feedback, forum posts, comments.

Revision ID: 0004_submissions
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_submissions"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "submission_items",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "revision",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="The editors' lock.",
        ),
        sa.Column("reference", sa.String(length=32), nullable=True),
        sa.Column("flags", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("flagged", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=True),
        sa.Column(
            "agency", sa.String(length=64), nullable=True, comment="The agency the asker addressed."
        ),
        sa.Column("routed_agency", sa.String(length=64), nullable=True),
        sa.Column(
            "context_id",
            sa.String(length=100),
            nullable=True,
            comment="Dialogue, document, topic, ...",
        ),
        sa.Column("context_title", sa.Text(), nullable=True),
        sa.Column("section_id", sa.String(length=100), nullable=True),
        sa.Column("section_title", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "author", sa.String(length=100), nullable=True, comment="The public name, if any."
        ),
        sa.Column("answer_text", sa.Text(), nullable=True),
        sa.Column("answer_html", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=300), nullable=True),
        sa.Column(
            "answer_author",
            sa.String(length=64),
            nullable=True,
            comment="Account that wrote the answer.",
        ),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_revision", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reports", sa.Integer(), server_default="0", nullable=False),
        sa.Column("open_reports", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_items")),
    )
    op.create_index(
        "ix_submission_items_queue", "submission_items", ["kind", "state", "submitted_at", "id"]
    )
    op.create_index(
        "ix_submission_items_agency", "submission_items", ["routed_agency", "state", "submitted_at"]
    )
    op.create_index(
        "ix_submission_items_context",
        "submission_items",
        ["context_id", "section_id", "submitted_at"],
    )
    op.create_index(
        "ix_submission_items_reported", "submission_items", ["open_reports", "last_reported_at"]
    )
    op.create_table(
        "submission_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("agency", sa.String(length=64), nullable=True),
        sa.Column(
            "event_id", sa.Uuid(), nullable=True, comment="The submission.moderated event emitted."
        ),
        _timestamp("decided_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_decisions")),
    )
    op.create_index(
        op.f("ix_submission_decisions_submission_id"), "submission_decisions", ["submission_id"]
    )
    op.create_table(
        "submission_reports",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_submission_reports")),
    )
    op.create_index(
        op.f("ix_submission_reports_submission_id"), "submission_reports", ["submission_id"]
    )


def downgrade() -> None:
    op.drop_table("submission_reports")
    op.drop_table("submission_decisions")
    op.drop_table("submission_items")
