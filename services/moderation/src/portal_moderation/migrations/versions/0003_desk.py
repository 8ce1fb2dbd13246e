"""The editors' desk: item locks and flags, near-duplicates, originals, dead letters, audit.

* review_items: a version (the optimistic lock of the web desk), the quality flags as an array
  (the queue filters on them), the near-duplicate normalize found (article.normalized's
  duplicate_of), the first person's review and first publication (dashboard);
* sources: the agency's category -> section mapping;
* item_claims: who has an item open, so two editors never act on one unknowingly;
* originals: the newest article as received from the partner (from article.ingested);
* dead_letters: messages of the pipeline that failed, per source (from the dead-letter topics);
* admin_audit: changes to sources, keys and accounts.

Revision ID: 0003_desk
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_desk"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.add_column(
        "review_items", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "review_items",
        sa.Column(
            "flags",
            postgresql.ARRAY(sa.String(length=64)),
            server_default="{}",
            nullable=False,
            comment="Codes of the quality issues that need a person (and near_duplicate).",
        ),
    )
    op.add_column(
        "review_items",
        sa.Column(
            "duplicate_of",
            sa.String(length=64),
            nullable=True,
            comment="A near-duplicate found by normalize (the first article of the story).",
        ),
    )
    op.add_column(
        "review_items",
        sa.Column(
            "reviewed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="First decision of a person on the item.",
        ),
    )
    op.add_column(
        "review_items",
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the item first became public (approved or auto-published).",
        ),
    )
    op.create_index("ix_review_items_flags", "review_items", ["flags"], postgresql_using="gin")
    op.create_index("ix_review_items_duplicate_of", "review_items", ["duplicate_of"])
    op.create_index("ix_review_items_created", "review_items", ["created_at"])
    op.create_index("ix_review_items_source_created", "review_items", ["source", "created_at"])
    op.create_index("ix_review_items_source_section", "review_items", ["source", "section"])
    op.create_index("ix_review_items_reviewed", "review_items", ["reviewed_at"])
    op.create_index("ix_review_items_published", "review_items", ["published_at"])
    # Existing rows: flags from their quality report, first review from the audit trail.
    op.execute(
        """
        UPDATE review_items SET flags = ARRAY(
            SELECT i->>'code' FROM jsonb_array_elements(quality->'issues') AS i
            WHERE COALESCE((i->>'needs_person')::boolean, true)
        )
        WHERE quality IS NOT NULL AND jsonb_typeof(quality->'issues') = 'array'
        """
    )
    op.execute(
        """
        UPDATE review_items AS r SET reviewed_at = d.first_at
        FROM (
            SELECT article_id, min(decided_at) AS first_at FROM decisions
            WHERE actor_role IS NOT NULL AND action IN ('approved', 'rejected', 'retracted')
            GROUP BY article_id
        ) AS d
        WHERE r.article_id = d.article_id
        """
    )

    op.execute(
        """
        UPDATE review_items AS r SET published_at = d.first_at
        FROM (
            SELECT article_id, min(decided_at) AS first_at FROM decisions
            WHERE action IN ('approved', 'auto_published')
            GROUP BY article_id
        ) AS d
        WHERE r.article_id = d.article_id
        """
    )
    op.add_column(
        "decisions",
        sa.Column(
            "wait_s",
            sa.Float(),
            nullable=True,
            comment="An editor's review: seconds the revision waited (dashboard latency).",
        ),
    )
    op.execute(
        """
        UPDATE decisions AS d
        SET wait_s = GREATEST(0, extract(epoch FROM d.decided_at - r.received_at))
        FROM review_items AS r
        WHERE r.article_id = d.article_id AND d.actor_role IS NOT NULL
          AND d.action IN ('approved', 'rejected')
        """
    )
    op.create_index("ix_decisions_actor_decided", "decisions", ["actor", "decided_at"])
    op.create_index("ix_decisions_decided", "decisions", ["decided_at"])

    op.add_column(
        "sources",
        sa.Column(
            "categories",
            postgresql.JSONB(),
            server_default="{}",
            nullable=False,
            comment="The agency's category (case-folded) -> portal section code.",
        ),
    )

    op.create_table(
        "item_claims",
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        _timestamp("claimed_at"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_item_claims")),
    )
    op.create_table(
        "originals",
        sa.Column("article_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "content",
            postgresql.JSONB(),
            nullable=True,
            comment="ArticleContent as the partner sent it (before repair).",
        ),
        sa.Column("raw_object_key", sa.Text(), nullable=True),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_originals")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dlq_topic", sa.String(length=255), nullable=False),
        sa.Column("dlq_partition", sa.Integer(), nullable=False),
        sa.Column("dlq_offset", sa.BigInteger(), nullable=False),
        sa.Column("original_topic", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("article_id", sa.String(length=64), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("error_type", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("consumer_group", sa.String(length=255), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        _timestamp("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint(
            "dlq_topic", "dlq_partition", "dlq_offset", name=op.f("uq_dead_letters_position")
        ),
    )
    op.create_index("ix_dead_letters_source_failed", "dead_letters", ["source", "failed_at"])
    op.create_index("ix_dead_letters_failed", "dead_letters", ["failed_at"])
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=True),
        _timestamp("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit")),
    )
    op.create_index("ix_admin_audit_actor_at", "admin_audit", ["actor", "at"])
    op.create_index("ix_admin_audit_target_at", "admin_audit", ["target", "at"])


def downgrade() -> None:
    op.drop_index("ix_admin_audit_target_at", table_name="admin_audit")
    op.drop_index("ix_admin_audit_actor_at", table_name="admin_audit")
    op.drop_table("admin_audit")
    op.drop_index("ix_dead_letters_failed", table_name="dead_letters")
    op.drop_index("ix_dead_letters_source_failed", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("originals")
    op.drop_table("item_claims")
    op.drop_column("sources", "categories")
    op.drop_index("ix_decisions_decided", table_name="decisions")
    op.drop_index("ix_decisions_actor_decided", table_name="decisions")
    op.drop_column("decisions", "wait_s")
    op.drop_index("ix_review_items_published", table_name="review_items")
    op.drop_index("ix_review_items_reviewed", table_name="review_items")
    op.drop_index("ix_review_items_source_section", table_name="review_items")
    op.drop_index("ix_review_items_source_created", table_name="review_items")
    op.drop_index("ix_review_items_created", table_name="review_items")
    op.drop_index("ix_review_items_duplicate_of", table_name="review_items")
    op.drop_index("ix_review_items_flags", table_name="review_items")
    for column in (
        "published_at",
        "reviewed_at",
        "duplicate_of",
        "flags",
        "version",
    ):
        op.drop_column("review_items", column)
