"""Published articles up to a page stored as they are, not compressed.

Each row carries a whole article (5-15 KiB of JSON): PostgreSQL's pglz compressed every one on
insert and each new revision, and decompressed it for every read of the public API. Rows up to
a page now stay in it uncompressed (more disk, less CPU); larger ones are compressed as before.

Revision ID: 0004_articles_inline
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_articles_inline"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The largest row PostgreSQL keeps in its page as it is (an 8 KiB page less its headers).
INLINE_ROW_BYTES = 8160


def upgrade() -> None:
    op.execute(f"ALTER TABLE articles SET (toast_tuple_target = {INLINE_ROW_BYTES})")


def downgrade() -> None:
    op.execute("ALTER TABLE articles RESET (toast_tuple_target)")
