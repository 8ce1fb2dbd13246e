"""Submissions keep a hash of what was sent with an Idempotency-Key, so the key replayed with
other content (or by someone else) is refused instead of answered with this submission.

Revision ID: 0003_idempotency_content
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_idempotency_content"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("submissions", sa.Column("content_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("submissions", "content_hash")
