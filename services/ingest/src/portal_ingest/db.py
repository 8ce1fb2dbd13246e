"""Tables of the ingest service's own database (migrations/versions/0002_partners.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from portal_runtime.db import new_metadata
from portal_runtime.outbox import Outbox, inbox_table, outbox_table

metadata = new_metadata()
outbox = Outbox(outbox_table(metadata), inbox_table(metadata))


def _now_column(name: str) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


# Partner agencies (loaded from deploy/seed by `portal seed` through the admin API).
sources = Table(
    "sources",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("sections", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("active", Boolean, nullable=False, server_default=true()),
    _now_column("created_at"),
    _now_column("updated_at"),
)

# Only a hash of each key's secret is kept; the plaintext is shown once when issued.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column(
        "source",
        String(64),
        ForeignKey("sources.code", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("secret_hash", String(64), nullable=False),
    Column("label", String(200), nullable=True),
    _now_column("created_at"),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# The agency's SCRAM user and topic (never its password).
kafka_credentials = Table(
    "kafka_credentials",
    metadata,
    Column("source", String(64), ForeignKey("sources.code", ondelete="CASCADE"), primary_key=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    _now_column("created_at"),
    _now_column("rotated_at"),
)

# One row per partner item: its newest revision and the status the partner sees.
articles = Table(
    "articles",
    metadata,
    Column("article_id", String(36), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),  # stable paging order
    # The agency's code; no foreign key, whose check locked the agency's one row on every write
    # (migration 0005_articles_source_unchecked).
    Column("source", String(64), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("title", String(500), nullable=True),
    Column("section", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_revision", Integer, nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("public_path", String(1000), nullable=True),
    _now_column("created_at"),
    _now_column("updated_at"),
    UniqueConstraint("source", "external_id", name="uq_articles_source_external_id"),
    Index("ix_articles_source_seq", "source", "seq"),
    Index("ix_articles_source_status_seq", "source", "status", "seq"),
)

# Every accepted revision: what identifies it and where its original is archived (the content
# is in the original, and in its article.ingested event). Written with its article's row in one
# statement, so no foreign key checks it (migration 0006_revisions_history_unchecked).
article_revisions = Table(
    "article_revisions",
    metadata,
    Column("article_id", String(36), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("content_hash", String(64), nullable=False),
    # Written no more (null): no reader, and a second copy of every article's content cost the
    # database a JSONB parse and a compressed TOAST value per revision. Older rows keep theirs.
    Column("content", JSONB, nullable=True),
    Column("raw_object_key", String(1024), nullable=False),
    # Where the original lies in that object when it is a pack (null: the whole object).
    Column("raw_offset", BigInteger, nullable=True),
    Column("raw_length", BigInteger, nullable=True),
    Column("event_id", Uuid, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("article_id", "revision", name="pk_article_revisions"),
)

# The partner-visible history: received, in_review, approved, published, rejected, retracted.
# Written in the statement that stores or locks its article's row (no foreign key: 0006).
article_history = Table(
    "article_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("article_id", String(36), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

# Partner Kafka messages that were refused (and dead-lettered), for GET /v1/errors.
partner_errors = Table(
    "partner_errors",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source", String(64), nullable=True),  # unknown agencies are recorded too
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("revision", Integer, nullable=True),
    Column("error_type", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    # A redelivered message is recorded (and dead-lettered) once.
    UniqueConstraint("topic", "partition", "offset", name="uq_partner_errors_position"),
    Index("ix_partner_errors_source_id", "source", "id"),
)
