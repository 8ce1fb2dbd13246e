"""An article's source is no longer checked by a foreign key on each write.

Every insert or upsert of an ``articles`` row ran the key's check, ``SELECT 1 FROM sources ...
FOR KEY SHARE``: about 5.5 a partner article (pg_stat_statements in bench/pipeline), each a
row lock on the agency's one ``sources`` row, shared by all its concurrent writers (multixacts
and WAL on a hot row). The check guarded nothing the service does not already: an article is
only written for the agency an API key, Kafka credentials or a pull source belongs to, and no
agency is ever deleted (``sources`` has no delete path).

Revision ID: 0005_articles_source_unchecked
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_articles_source_unchecked"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("fk_articles_source_sources", "articles", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key("fk_articles_source_sources", "articles", "sources", ["source"], ["code"])
