"""Articles stored uncompressed: published articles, and outbox events over a page.

A published article (about 10 KiB of JSON: the repaired HTML and its text) was pglz
compressed on every insert and update, and so was each outbox event larger than a page (the
rows up to a page stay inline since 0001c): about 180 us of PostgreSQL's CPU per 8 KiB value,
spent to save disk on rows that are read about as often as they are written (an outbox row
lives milliseconds; an article is read for every page built). They are now moved out of the
row as they are (more disk, less CPU).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from portal_runtime.messaging_schema import store_compressed_again, store_uncompressed

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("articles", "article"), ("outbox", "value"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        store_uncompressed(table, column)


def downgrade() -> None:
    for table, column in _COLUMNS:
        store_compressed_again(table, column)
