"""Tables of the normalize service's own database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, Integer, String, Table, Uuid, func
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
    Column("normalized_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
