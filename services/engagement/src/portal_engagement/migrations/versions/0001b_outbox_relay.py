"""The outbox relay's scheduling columns (lane, fair key) and the outbox_dead table.

Revision ID: 0001b_outbox_relay
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from portal_runtime.messaging_schema import (
    add_relay_lanes_and_dead_table,
    drop_relay_lanes_and_dead_table,
)

revision: str = "0001b_outbox_relay"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_relay_lanes_and_dead_table()


def downgrade() -> None:
    drop_relay_lanes_and_dead_table()
