"""Near-duplicate signatures carry their scheme; the stories signed by scheme 1 found by age.

Every signature stored before this revision was made by scheme 1 (``similarity_v1``); new ones
by the scheme in ``similarity``. New articles are also signed by scheme 1 and looked up among
those stories while any of them is recent enough (``NEAR_DUPLICATE_V1_DAYS``): the partial
index finds the newest such story at once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "fingerprints",
        sa.Column(
            "scheme",
            sa.SmallInteger(),
            server_default="1",
            nullable=False,
            comment="The signature's scheme (portal_normalize.similarity.SCHEME when written).",
        ),
    )
    # The default stays: an instance of the previous release still running during a rolling
    # update writes scheme-1 signatures without naming their scheme.
    op.create_index(
        "ix_fingerprints_scheme1_stories",
        "fingerprints",
        ["created_at"],
        postgresql_where=sa.text("scheme = 1 AND duplicate_of IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_fingerprints_scheme1_stories", table_name="fingerprints")
    op.execute("DELETE FROM fingerprint_bands WHERE band >= 16")
    op.execute("DELETE FROM fingerprints WHERE scheme <> 1")  # scheme 1 code cannot read the others
    op.drop_column("fingerprints", "scheme")
