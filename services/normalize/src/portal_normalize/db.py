"""Tables of the normalize service's own database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from portal_runtime.db import new_metadata
from portal_runtime.outbox import Outbox, inbox_table, outbox_table

metadata = new_metadata()
outbox = Outbox(outbox_table(metadata), inbox_table(metadata))

# The newest revision normalised per article: older revisions arriving later are ignored.
articles = Table(
    "normalized_articles",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("source", String(64), nullable=False, index=True),
    Column("external_id", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("event_id", Uuid, nullable=False, comment="The article.ingested event normalised."),
    Column("quality_score", Float, nullable=True),
    Column("quality", JSONB, nullable=True),
    Column("duplicate_of", String(64), nullable=True, comment="Article id of a near-duplicate."),
    Column("normalized_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Per-source rules kept as data (PUT /admin/v1/sources/{code}/mapping).
source_rules = Table(
    "source_rules",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("categories", JSONB, nullable=False, comment="Category name -> portal section."),
    Column("timezone", String(64), nullable=False),
    Column("default_section", String(64), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# What fetching each image URL gave: stored copies are reused, failures retried later.
image_cache = Table(
    "image_cache",
    metadata,
    Column("url_hash", String(64), primary_key=True, comment="SHA-256 of the URL."),
    Column("url", Text, nullable=False),
    Column("object_key", Text, nullable=True),
    Column("sha256", String(64), nullable=True, index=True, comment="Of the bytes as fetched."),
    Column("content_type", String(64), nullable=True),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("renditions", JSONB, nullable=True, comment="Width -> object key."),
    Column("size_bytes", Integer, nullable=True),
    Column("code", String(32), nullable=True, comment="Failure code; NULL when stored."),
    Column("reason", Text, nullable=True),
    Column("fetched_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Near-duplicate fingerprints: a MinHash signature per article, looked up by its bands.
fingerprints = Table(
    "fingerprints",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column(
        "scheme",
        SmallInteger,
        nullable=False,
        server_default=text("1"),  # rows of the release before schemes were named
        comment="The signature's scheme (portal_normalize.similarity.SCHEME when written).",
    ),
    Column("duplicate_of", String(64), nullable=True),
    Column("similarity", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The stories still signed by scheme 1, newest first (how long they are looked up).
    Index(
        "ix_fingerprints_scheme1_stories",
        "created_at",
        postgresql_where=text("scheme = 1 AND duplicate_of IS NULL"),
    ),
)
fingerprint_bands = Table(
    "fingerprint_bands",
    metadata,
    Column("band", SmallInteger, nullable=False),
    Column("key", BigInteger, nullable=False),
    Column("article_id", String(64), nullable=False, index=True),
    PrimaryKeyConstraint("band", "key", "article_id"),
)
