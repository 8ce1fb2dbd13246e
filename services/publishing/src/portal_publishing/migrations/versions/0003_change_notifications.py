"""Notify listeners when the published store changes (the page caches of every instance).

Every public change bumps a row of ``changes`` (repository.touch); these triggers send
``NOTIFY publishing_changes`` for such a statement, and for any statement that writes the store's
tables by another way (an SRE's fix by hand, a wipe before ``portal rebuild publishing``).
PostgreSQL delivers it at commit (never for a rolled-back transaction), once per transaction, to
every instance listening (pagecache.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

TABLES = ("changes", "articles", "site_blocks", "site_sections", "site_subsites")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION publishing_notify_changes() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('publishing_changes', '');
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"""
            CREATE TRIGGER {table}_notify
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION publishing_notify_changes()
            """
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS publishing_notify_changes()")
