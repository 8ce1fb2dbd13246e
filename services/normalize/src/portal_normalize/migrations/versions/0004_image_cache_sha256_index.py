"""Index image_cache by the hash of the bytes: renditions are made on request by it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_image_cache_sha256"), "image_cache", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_image_cache_sha256"), table_name="image_cache")
