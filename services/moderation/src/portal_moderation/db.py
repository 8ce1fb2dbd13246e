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
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

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
    Column(
        "categories",
        JSONB,
        nullable=False,
        server_default="{}",
        comment="The agency's category (case-folded) -> portal section code.",
    ),
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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("role IN ('admin', 'chief_editor', 'editor', 'agency_publisher')", name="role"),
    CheckConstraint("(role = 'agency_publisher') = (source IS NOT NULL)", name="source"),
)

# Failed sign-ins, counted per client address and per (name, address) over a sliding window
# before any password is hashed. The name is whatever was typed: it need not be an account.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("address", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_sign_in_failures_address", "address", "username", "failed_at"),
    Index("ix_sign_in_failures_failed_at", "failed_at"),
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
    # The desk's optimistic lock: every change (new revision, decision, edit) bumps it.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("flags", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("duplicate_of", String(64), nullable=True, comment="Normalize's near-duplicate."),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
    Column("published_at", DateTime(timezone=True), nullable=True),
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
    Column("wait_s", Float, nullable=True, comment="An editor's review: seconds it waited."),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Who has an item open in the desk (a soft lock, shown to the others; it expires by itself).
item_claims = Table(
    "item_claims",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# The newest article as the partner sent it (article.ingested), shown beside the repaired one.
originals = Table(
    "originals",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("content", JSONB, nullable=True),
    Column("raw_object_key", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Pipeline messages that failed (from the dead-letter topics), for per-source health.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dlq_topic", String(255), nullable=False),
    Column("dlq_partition", Integer, nullable=False),
    Column("dlq_offset", BigInteger, nullable=False),
    Column("original_topic", String(255), nullable=True),
    Column("source", String(64), nullable=True),
    Column("article_id", String(64), nullable=True),
    Column("external_id", String(200), nullable=True),
    Column("error_type", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("consumer_group", String(255), nullable=True),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A dead letter's id is stable: a copy the outbox relay sent twice is recorded once.
    Column("event_id", Uuid, nullable=True, unique=True),
    UniqueConstraint("dlq_topic", "dlq_partition", "dlq_offset", name="uq_dead_letters_position"),
)

# Administrators' changes: sources, policies, mappings, keys, Kafka access, accounts.
admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", JSONB, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Articles written in the desk for an agency: the draft being edited, and once submitted, the
# article it became in the pipeline (ingest's id) and the last revision sent.
drafts = Table(
    "drafts",
    metadata,
    Column("draft_id", String(64), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("external_id", String(200), nullable=False, unique=True),
    Column("article_id", String(64), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=True),
    Column("section", String(64), nullable=True),
    Column("author", String(300), nullable=True),
    Column("body_html", Text, nullable=False),
    Column("lead_image_url", Text, nullable=True),
    Column("lead_caption", Text, nullable=True),
    Column("submitted_revision", Integer, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("editor_comment", Text, nullable=True, comment="An editor's word on a rejection."),
    Column("comment_by", String(64), nullable=True),
    Column("comment_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("state IN ('draft', 'submitted', 'retracted')", name="state"),
    Index("ix_drafts_source_updated", "source", "updated_at"),
)
