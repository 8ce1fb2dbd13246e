"""Review items and originals up to a page stored as they are, not compressed.

Each row carries a whole article (5-15 KiB of JSON): PostgreSQL's pglz compressed every one on
insert and on every update (each new revision, each decision), the largest single cost of the
database's CPU for the pipeline. Rows up to a page now stay in it uncompressed (more disk,
less CPU); larger ones are compressed as before.

Revision ID: 0008_articles_inline
Revises: 0007_drafts
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_articles_inline"
down_revision: str | None = "0007_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The largest row PostgreSQL keeps in its page as it is (an 8 KiB page less its headers).
INLINE_ROW_BYTES = 8160
TABLES = ("review_items", "originals")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (toast_tuple_target = {INLINE_ROW_BYTES})")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
