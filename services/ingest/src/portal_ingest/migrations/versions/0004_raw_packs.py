"""A revision's original may lie in a pack: its byte range in the raw archive's object.

Revision ID: 0004_raw_packs
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_raw_packs"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null: the whole object (every revision archived before packs).
    op.add_column("article_revisions", sa.Column("raw_offset", sa.BigInteger(), nullable=True))
    op.add_column("article_revisions", sa.Column("raw_length", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("article_revisions", "raw_length")
    op.drop_column("article_revisions", "raw_offset")
