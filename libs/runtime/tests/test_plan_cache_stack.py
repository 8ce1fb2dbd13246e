"""Prepared statements and growing tables, on the stack's PostgreSQL.

Each pooled connection prepares a statement once. With PostgreSQL's default (``auto``) the
sixth execution fixes a generic plan, kept until the table is next analysed: a batch lookup
first run while its table was empty keeps reading the whole table once it has grown. An engine
made with ``force_custom_plan`` (ingest's, normalize's and publishing's setting) plans each execution for
the table as it is, so the lookup stays a lookup.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from portal_runtime.db import make_engine

pytestmark = pytest.mark.stack

# The shape of ingest's intake lookup: the batch's keys as an array, joined to the table.
LOOKUP = text(
    "SELECT q.key, i.title FROM unnest(CAST(:keys AS varchar[])) AS q(key) "
    "LEFT JOIN items AS i ON i.key = q.key"
)
SCANS = text("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'items'")


async def _scans(conn: AsyncConnection) -> tuple[int, int]:
    """Whole-table and index scans of ``items`` so far (this transaction's included)."""
    row = (await conn.execute(SCANS)).one()
    return row.seq_scan, row.idx_scan


async def test_a_batch_lookup_prepared_on_an_empty_table_stays_a_lookup_once_it_has_grown(
    scratch_database_url: str,
) -> None:
    engine = make_engine(scratch_database_url, pool_size=1, plan_cache_mode="force_custom_plan")
    keys = [f"k{n}" for n in range(0, 300, 20)]  # a batch of 15
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar() == (
                "force_custom_plan"
            )
            await conn.execute(text("CREATE TABLE items (key varchar PRIMARY KEY, title text)"))
        # A new service's first batches: past the five executions after which "auto" keeps a
        # generic plan, all while the table is empty (the one pooled connection each time).
        for _ in range(8):
            async with engine.begin() as conn:
                assert (await conn.execute(LOOKUP, {"keys": keys})).all()[0].title is None
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO items SELECT 'k' || n, repeat('tin ', 100) "
                    "FROM generate_series(0, 19999) AS n"
                )
            )
        async with engine.begin() as conn:
            seq_before, idx_before = await _scans(conn)
            for _ in range(5):
                found = (await conn.execute(LOOKUP, {"keys": keys})).all()
                assert len(found) == 15 and all(row.title for row in found)
            seq_after, idx_after = await _scans(conn)
        assert seq_after - seq_before == 0, "the grown table was read whole"
        assert idx_after - idx_before >= 5
    finally:
        await engine.dispose()
