"""Outbox rows up to a page stored as they are, not compressed (portal_runtime.messaging_schema).

Revision ID: 0001c_outbox_inline
Revises: 0001b_outbox_relay
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from portal_runtime.messaging_schema import compress_outbox_rows_again, keep_outbox_rows_inline

revision: str = "0001c_outbox_inline"
down_revision: str | None = "0001b_outbox_relay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    keep_outbox_rows_inline()


def downgrade() -> None:
    compress_outbox_rows_again()
