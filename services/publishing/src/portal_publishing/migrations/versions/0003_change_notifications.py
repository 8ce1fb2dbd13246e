"""Notify listeners when the published store changes (the page caches of every instance).

Every public change bumps a row of ``changes`` (repository.touch); this trigger sends
``NOTIFY publishing_changes`` for such a statement. PostgreSQL delivers it at commit (never for
a rolled-back transaction), once per transaction, to every instance listening (pagecache.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

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
    op.execute(
        """
        CREATE TRIGGER changes_notify
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON changes
        FOR EACH STATEMENT EXECUTE FUNCTION publishing_notify_changes()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS changes_notify ON changes")
    op.execute("DROP FUNCTION IF EXISTS publishing_notify_changes()")
