"""The engagement block: topics, dialogues, feedback documents, the articles that take
comments, submissions with their status links and steps, contacts (apart), reports, the live
dialogue log.

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
        "articles",
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("url_path", sa.String(length=300), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_articles")),
    )
    op.create_table(
        "dialogue_events",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dialogue_code", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_dialogue_events")),
    )
    op.create_index(
        "ix_dialogue_events_dialogue_seq", "dialogue_events", ["dialogue_code", "seq"], unique=False
    )
    op.create_table(
        "dialogues",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "guests",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
            comment="[{name, position}]",
        ),
        sa.Column("questions_open_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dialogues")),
    )
    op.create_table(
        "feedback_documents",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("requested_by", sa.String(length=300), nullable=False),
        sa.Column(
            "sections",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
            comment="[{code, title, text}]",
        ),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_feedback_documents")),
    )
    op.create_table(
        "forum_topics",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_forum_topics")),
    )
    op.create_table(
        "qa_topics",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_qa_topics")),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("moderation_revision", sa.Integer(), server_default="0", nullable=False),
        sa.Column("public", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("held", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "flags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column(
            "agency", sa.String(length=64), nullable=True, comment="The agency the asker addressed."
        ),
        sa.Column(
            "routed_agency", sa.String(length=64), nullable=True, comment="The agency that answers."
        ),
        sa.Column("dialogue_code", sa.String(length=64), nullable=True),
        sa.Column("document_code", sa.String(length=64), nullable=True),
        sa.Column("section_code", sa.String(length=64), nullable=True),
        sa.Column("forum_topic", sa.String(length=64), nullable=True),
        sa.Column("thread_id", sa.String(length=64), nullable=True),
        sa.Column("article_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column(
            "reason",
            sa.Text(),
            nullable=True,
            comment="Why rejected or withdrawn (submitter only).",
        ),
        sa.Column("answer_html", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=300), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_revision", sa.Integer(), nullable=True),
        sa.Column("reports", sa.Integer(), server_default="0", nullable=False),
        sa.Column("idempotency_hash", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("idempotency_hash", name=op.f("uq_submissions_idempotency_hash")),
        sa.UniqueConstraint("number", name=op.f("uq_submissions_number")),
        sa.UniqueConstraint("reference", name=op.f("uq_submissions_reference")),
    )
    op.create_index("ix_submissions_agency", "submissions", ["routed_agency", "kind"], unique=False)
    op.create_index(
        "ix_submissions_article",
        "submissions",
        ["article_id", "public", "published_at"],
        unique=False,
    )
    op.create_index(
        "ix_submissions_dialogue", "submissions", ["dialogue_code", "answered_at"], unique=False
    )
    op.create_index(
        "ix_submissions_document", "submissions", ["document_code", "section_code"], unique=False
    )
    op.create_index(
        "ix_submissions_forum_topic", "submissions", ["forum_topic", "kind", "public"], unique=False
    )
    op.create_index(
        "ix_submissions_kind_public",
        "submissions",
        ["kind", "public", "published_at"],
        unique=False,
    )
    op.create_index(
        "ix_submissions_thread",
        "submissions",
        ["thread_id", "public", "published_at"],
        unique=False,
    )
    op.create_table(
        "contacts",
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_contacts_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_reports_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("submission_id", "client_hash", name="uq_reports_client"),
    )
    op.create_table(
        "status_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_status_tokens_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_status_tokens")),
    )
    op.create_index(
        op.f("ix_status_tokens_submission_id"), "status_tokens", ["submission_id"], unique=False
    )
    op.create_table(
        "submission_steps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_steps_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_steps")),
        sa.UniqueConstraint("submission_id", "revision", name="uq_submission_steps_revision"),
    )
    op.create_index(
        op.f("ix_submission_steps_submission_id"),
        "submission_steps",
        ["submission_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_submission_steps_submission_id"), table_name="submission_steps")
    op.drop_table("submission_steps")
    op.drop_index(op.f("ix_status_tokens_submission_id"), table_name="status_tokens")
    op.drop_table("status_tokens")
    op.drop_table("reports")
    op.drop_table("contacts")
    op.drop_index("ix_submissions_thread", table_name="submissions")
    op.drop_index("ix_submissions_kind_public", table_name="submissions")
    op.drop_index("ix_submissions_forum_topic", table_name="submissions")
    op.drop_index("ix_submissions_document", table_name="submissions")
    op.drop_index("ix_submissions_dialogue", table_name="submissions")
    op.drop_index("ix_submissions_article", table_name="submissions")
    op.drop_index("ix_submissions_agency", table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("qa_topics")
    op.drop_table("forum_topics")
    op.drop_table("feedback_documents")
    op.drop_table("dialogues")
    op.drop_index("ix_dialogue_events_dialogue_seq", table_name="dialogue_events")
    op.drop_table("dialogue_events")
    op.drop_table("articles")
