"""Tables of the publishing service's own database."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
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

# The site structure (replaced as a whole by the admin API; rows are deactivated, never deleted,
# so articles of a removed section or sub-site keep their data).
site_blocks = Table(
    "site_blocks",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
)

site_sections = Table(
    "site_sections",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("block_code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("standard", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
)

site_subsites = Table(
    "site_subsites",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
)

# One row per article: its newest published revision, or a retraction (a tombstone that keeps
# the revision so late, older decisions stay ignored).
articles = Table(
    "articles",
    metadata,
    Column("article_id", String(64), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # PublishedState
    Column("slug", String(200), nullable=True, unique=True),  # null until first published
    Column("section", String(64), nullable=True),
    Column("title", Text, nullable=True),
    Column("summary", Text, nullable=True),
    Column("author", Text, nullable=True),
    Column("lead_image", JSONB, nullable=True),
    Column("source_published_at", DateTime(timezone=True), nullable=True),
    Column("article", JSONB, nullable=True),  # NormalizedArticle of the published revision
    Column("fingerprint", String(64), nullable=True),
    Column("published_at", DateTime(timezone=True), nullable=True),  # first publication
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("retracted_at", DateTime(timezone=True), nullable=True),
    # Server time of the last change of this row: the Last-Modified of its page.
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_event_id", Uuid, nullable=False),
)

_PUBLISHED = text("state = 'published'")
Index(
    "ix_articles_published_order",
    articles.c.published_at.desc(),
    articles.c.article_id.desc(),
    postgresql_where=_PUBLISHED,
)
Index(
    "ix_articles_section_order",
    articles.c.section,
    articles.c.published_at.desc(),
    articles.c.article_id.desc(),
    postgresql_where=_PUBLISHED,
)
Index(
    "ix_articles_source_order",
    articles.c.source,
    articles.c.published_at.desc(),
    articles.c.article_id.desc(),
    postgresql_where=_PUBLISHED,
)

# When each public representation last changed ('site', 'articles', 'section:<code>',
# 'subsite:<code>'): the Last-Modified of lists, feeds and sitemaps. Server time, so a late
# event never makes a newer change look older than what a client already holds.
changes = Table(
    "changes",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
