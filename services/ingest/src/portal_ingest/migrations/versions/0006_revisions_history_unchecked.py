"""An article's revisions and history rows are no longer checked by foreign keys on each write.

Every insert into ``article_revisions`` and ``article_history`` ran its key's check, ``SELECT 1
FROM articles ... FOR KEY SHARE``: about 4.4 a partner article (pg_stat_statements in
bench/pipeline: one revision and one history row at intake, a history row per status change),
each a row lock on the article's row, which the same transaction or the next status change
writes anyway (a lock record in the WAL, multixacts when two writers meet). The checks guarded
nothing the service does not already: both are written in the statement that stores or locks
the article's row (``intake_repository.store_revisions`` only for the articles it stored,
``repository.set_statuses`` only for the articles it locked), and no article is ever deleted
(no delete path: the cascade never ran).

Revision ID: 0006_revisions_history_unchecked
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_revisions_history_unchecked"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(
        "fk_article_revisions_article_id_articles", "article_revisions", type_="foreignkey"
    )
    op.drop_constraint(
        "fk_article_history_article_id_articles", "article_history", type_="foreignkey"
    )


def downgrade() -> None:
    op.create_foreign_key(
        "fk_article_revisions_article_id_articles",
        "article_revisions",
        "articles",
        ["article_id"],
        ["article_id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        "fk_article_history_article_id_articles",
        "article_history",
        "articles",
        ["article_id"],
        ["article_id"],
        ondelete="CASCADE",
    )
