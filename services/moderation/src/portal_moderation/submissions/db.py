"""Tables of the submissions desk (on the moderation service's metadata; migration
``0004_submissions``). The submitters' contact details are not here: engagement keeps them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
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

from portal_moderation.db import metadata

# One row per submission: where it stands, its text, its answer.
submission_items = Table(
    "submission_items",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("revision", Integer, nullable=False, server_default="0", comment="The editors' lock."),
    Column("reference", String(32), nullable=True),
    Column("flags", JSONB, nullable=False, server_default="[]"),
    Column("flagged", Boolean, nullable=False, server_default="false"),
    Column("topic", String(100), nullable=True),
    Column("agency", String(64), nullable=True, comment="The agency the asker addressed."),
    Column("routed_agency", String(64), nullable=True),
    Column("context_id", String(100), nullable=True, comment="Dialogue, document, topic, ..."),
    Column("context_title", Text, nullable=True),
    Column("section_id", String(100), nullable=True),
    Column("section_title", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("author", String(100), nullable=True, comment="The public name, if any."),
    Column("answer_text", Text, nullable=True),
    Column("answer_html", Text, nullable=True),
    Column("answered_by", String(300), nullable=True),
    Column("answer_author", String(64), nullable=True, comment="Account that wrote the answer."),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("published_revision", Integer, nullable=True),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
    Column("reports", Integer, nullable=False, server_default="0"),
    Column("open_reports", Integer, nullable=False, server_default="0"),
    Column("last_reported_at", DateTime(timezone=True), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_submission_items_queue", "kind", "state", "submitted_at", "id"),
    Index("ix_submission_items_agency", "routed_agency", "state", "submitted_at"),
    Index("ix_submission_items_context", "context_id", "section_id", "submitted_at"),
    Index("ix_submission_items_reported", "open_reports", "last_reported_at"),
)

# The audit trail of the submissions desk.
submission_decisions = Table(
    "submission_decisions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("submission_id", String(64), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("actor_role", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("agency", String(64), nullable=True),
    Column("event_id", Uuid, nullable=True, comment="The submission.moderated event emitted."),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Readers' reports on published posts (from submission.reported).
submission_reports = Table(
    "submission_reports",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("submission_id", String(64), nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    Column("note", Text, nullable=True),
    Column("reported_at", DateTime(timezone=True), nullable=False),
)
