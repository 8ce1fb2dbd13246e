"""Dead letters are recorded once per dead letter, not per copy: the event id of a dead letter
is stable (its record and consumer group), and the outbox relay may deliver one twice.

Revision ID: 0005_dead_letter_ids
Revises: 0003_desk
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_dead_letter_ids"
down_revision: str | None = "0003_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("event_id", sa.Uuid(), nullable=True))
    op.create_unique_constraint("uq_dead_letters_event_id", "dead_letters", ["event_id"])


def downgrade() -> None:
    op.drop_constraint("uq_dead_letters_event_id", "dead_letters", type_="unique")
    op.drop_column("dead_letters", "event_id")
