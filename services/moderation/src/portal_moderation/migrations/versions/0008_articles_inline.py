"""Originals (the article as its partner sent it) up to a page stored as they are.

Each row carries one article as received (about 5 KiB of JSON): PostgreSQL's pglz compressed
every one on insert and on each new revision (pglz_compress was the top PostgreSQL function in
a profile of the pipeline). Rows up to a page now stay in it uncompressed (more disk, less CPU);
larger ones are compressed as before. Review items carry the repaired article's HTML and text
(about 10 KiB, over a page), which this setting would not change.

Revision ID: 0008_articles_inline
Revises: 0007_drafts
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from portal_runtime.messaging_schema import compress_rows_again, keep_rows_inline

revision: str = "0008_articles_inline"
down_revision: str | None = "0007_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    keep_rows_inline("originals")


def downgrade() -> None:
    compress_rows_again("originals")
