"""Tables of the engagement service's own database.

Contact details (e-mail, phone) live in ``contacts`` only: no public query reads that table, and
no event carries it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from portal_runtime.db import new_metadata
from portal_runtime.outbox import Outbox, inbox_table, outbox_table

metadata = new_metadata()
outbox = Outbox(outbox_table(metadata), inbox_table(metadata))


def _topics(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("code", String(64), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("description", Text, nullable=False, server_default=""),
        Column("position", Integer, nullable=False, server_default="0"),
        Column("active", Boolean, nullable=False, server_default="true"),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


qa_topics = _topics("qa_topics")
forum_topics = _topics("forum_topics")

dialogues = Table(
    "dialogues",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("guests", JSONB, nullable=False, server_default="[]", comment="[{name, position}]"),
    Column("questions_open_at", DateTime(timezone=True), nullable=True),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

feedback_documents = Table(
    "feedback_documents",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("title", String(500), nullable=False),
    Column("summary", Text, nullable=False, server_default=""),
    Column("requested_by", String(300), nullable=False),
    Column("sections", JSONB, nullable=False, server_default="[]", comment="[{code, title, text}]"),
    Column("opens_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Published articles (from article.published): comments are taken only on public articles.
articles = Table(
    "articles",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("slug", String(200), nullable=False),
    Column("url_path", String(300), nullable=False),
    Column("title", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every public submission, whatever its kind; what the public may see is decided by ``public``.
submissions = Table(
    "submissions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("number", BigInteger, Identity(), nullable=False, unique=True),
    Column("reference", String(32), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("moderation_revision", Integer, nullable=False, server_default="0"),
    Column("public", Boolean, nullable=False, server_default="false"),
    Column("held", Boolean, nullable=False, server_default="false"),
    Column("flags", JSONB, nullable=False, server_default="[]"),
    Column("topic", String(64), nullable=True),
    Column("agency", String(64), nullable=True, comment="The agency the asker addressed."),
    Column("routed_agency", String(64), nullable=True, comment="The agency that answers."),
    Column("dialogue_code", String(64), nullable=True),
    Column("document_code", String(64), nullable=True),
    Column("section_code", String(64), nullable=True),
    Column("forum_topic", String(64), nullable=True),
    Column("thread_id", String(64), nullable=True),
    Column("article_id", String(64), nullable=True),
    Column("title", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("display_name", String(100), nullable=True),
    Column("reason", Text, nullable=True, comment="Why rejected or withdrawn (submitter only)."),
    Column("answer_html", Text, nullable=True),
    Column("answered_by", String(300), nullable=True),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("answer_revision", Integer, nullable=True),
    Column("reports", Integer, nullable=False, server_default="0"),
    Column("idempotency_hash", String(64), nullable=True, unique=True),
    # What was sent with the Idempotency-Key: a replay must match it (else 409).
    Column("content_hash", String(64), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_submissions_kind_public", "kind", "public", "published_at"),
    Index("ix_submissions_article", "article_id", "public", "published_at"),
    Index("ix_submissions_thread", "thread_id", "public", "published_at"),
    Index("ix_submissions_forum_topic", "forum_topic", "kind", "public"),
    Index("ix_submissions_dialogue", "dialogue_code", "answered_at"),
    Index("ix_submissions_document", "document_code", "section_code"),
    Index("ix_submissions_agency", "routed_agency", "kind"),
)

# Private status links: only a SHA-256 digest of each random token is stored.
status_tokens = Table(
    "status_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "submission_id",
        String(64),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The steps the submitter's status link shows, in order.
submission_steps = Table(
    "submission_steps",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "submission_id",
        String(64),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("state", String(16), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("agency", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("submission_id", "revision", name="uq_submission_steps_revision"),
)

# Contact details, apart from the public text; read only by the admin API.
contacts = Table(
    "contacts",
    metadata,
    Column(
        "submission_id",
        String(64),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Readers' reports on published posts and comments; one per client and post.
reports = Table(
    "reports",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "submission_id",
        String(64),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("reason", String(32), nullable=False),
    Column("note", Text, nullable=True),
    Column("client_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("submission_id", "client_hash", name="uq_reports_client"),
)

# What live readers of a dialogue receive, in order (the SSE event id is ``seq``).
dialogue_events = Table(
    "dialogue_events",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("dialogue_code", String(64), nullable=False),
    Column("submission_id", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_dialogue_events_dialogue_seq", "dialogue_code", "seq"),
)
