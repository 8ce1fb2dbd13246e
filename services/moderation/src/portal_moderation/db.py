"""Tables of the moderation service's own database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from portal_runtime.db import new_metadata
from portal_runtime.outbox import Outbox, inbox_table, outbox_table

metadata = new_metadata()
outbox = Outbox(outbox_table(metadata), inbox_table(metadata))

# Partner agencies and their trust policy (pre-review or trusted); unknown means pre-review.
sources = Table(
    "sources",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("policy", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("policy IN ('pre-review', 'trusted')", name="policy"),
)

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False, comment="argon2id"),
    Column("role", String(32), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("source", String(64), nullable=True, comment="Only for agency_publisher."),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("role IN ('admin', 'chief_editor', 'editor', 'agency_publisher')", name="role"),
    CheckConstraint("(role = 'agency_publisher') = (source IS NOT NULL)", name="source"),
)

# Bearer sessions: only a SHA-256 digest of the random token is stored.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "username",
        String(64),
        ForeignKey("users.username", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# One row per article: its newest revision and where it stands in review.
review_items = Table(
    "review_items",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("title", Text, nullable=True),
    Column("section", String(64), nullable=True),
    Column("article", JSONB, nullable=True, comment="NormalizedArticle, editors' edits applied."),
    Column("quality", JSONB, nullable=True),
    Column("quality_score", Float, nullable=True),
    Column("published_revision", Integer, nullable=True, comment="The revision now public."),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "state IN ('pending', 'auto_published', 'published', 'rejected', 'retracted')",
        name="state",
    ),
    Index("ix_review_items_state_received", "state", "received_at", "article_id"),
    Index("ix_review_items_source_received", "source", "received_at", "article_id"),
    Index("ix_review_items_received", "received_at", "article_id"),
)

# The audit trail: every decision (and every revision received), who, when, what changed.
decisions = Table(
    "decisions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("article_id", String(64), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("actor_role", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("changes", JSONB, nullable=True, comment="Edited fields: {field: {before, after}}."),
    Column("event_id", Uuid, nullable=True, comment="The article.reviewed event it emitted."),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
