"""The compiled-once upsert on the stack's PostgreSQL: new rows are inserted, a conflict updates
(or not, as its condition says) or is ignored, JSON goes in as text or as a value, and every
row is written in the caller's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, String, Table, case, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from portal_runtime.db import make_engine, make_sessionmaker, new_metadata
from portal_runtime.upsert import Upsert, from_proposed

pytestmark = pytest.mark.stack

metadata = new_metadata()
items = Table(
    "items",
    metadata,
    Column("item_id", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("title", String(200), nullable=True),
    Column("body", JSONB, nullable=True),
    Column("tags", ARRAY(String(16)), nullable=False, server_default="{}"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("changed_at", DateTime(timezone=True), nullable=True),
)
COLUMNS = ("item_id", "revision", "title", "body", "tags")

# Newer revisions replace the row; a row without a title keeps the stored one.
SAVE = Upsert(
    items,
    COLUMNS,
    conflict=["item_id"],
    set_=lambda new: {
        **from_proposed(new, ["revision", "body"]),
        "title": case((new.title.is_(None), items.c.title), else_=new.title),
        "version": items.c.version + 1,  # a constant of the statement
        "changed_at": func.now(),
    },
    where=lambda new: items.c.revision < new.revision,
)
KEEP_FIRST = Upsert(items, COLUMNS)
DIALECT: Dialect = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]


def row(
    item_id: str, revision: int, title: str | None, body: Any = None, tags: list[str] | None = None
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "revision": revision,
        "title": title,
        "body": body,
        "tags": tags or [],
    }


async def stored(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(items).order_by(items.c.item_id))
        return {r.item_id: dict(r._mapping) for r in rows}


@pytest.fixture
async def engine(scratch_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(scratch_database_url, pool_size=2)
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_new_rows_are_inserted_with_json_as_text_or_value(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine).begin() as session:
        await SAVE.run(
            session,
            [
                row("a", 1, "Tin A", '{"đoạn": "Hà Nội"}', ["thời sự", "hà nội"]),
                row("b", 1, "Tin B", {"n": [1, 2]}),
            ],
        )
    rows = await stored(engine)
    assert [r["tags"] for r in rows.values()] == [["thời sự", "hà nội"], []]
    assert rows["a"]["body"] == {"đoạn": "Hà Nội"}
    assert rows["b"]["body"] == {"n": [1, 2]}
    assert [(r["title"], r["version"], r["changed_at"]) for r in rows.values()] == [
        ("Tin A", 1, None),
        ("Tin B", 1, None),
    ]


async def test_a_conflict_updates_as_the_set_clause_says_when_its_condition_holds(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await SAVE.run(conn, [row("a", 2, "Tin A", '{"v": 2}'), row("b", 1, "Tin B")])
    async with engine.begin() as conn:
        await SAVE.run(
            conn,
            [
                row("a", 3, None, '{"v": 3}'),  # newer, no title: keeps "Tin A"
                row("a", 4, "Tin A sửa", '{"v": 4}'),  # the same key again, in order
                row("b", 1, "Cũ", '{"v": 0}'),  # not newer: left alone
                row("c", 1, "Tin C"),
            ],
        )
    rows = await stored(engine)
    assert {k: (r["revision"], r["title"], r["body"], r["version"]) for k, r in rows.items()} == {
        "a": (4, "Tin A sửa", {"v": 4}, 3),
        "b": (1, "Tin B", None, 1),
        "c": (1, "Tin C", None, 1),
    }
    assert rows["a"]["changed_at"] is not None
    assert rows["b"]["changed_at"] is None


async def test_do_nothing_keeps_the_stored_row_and_inserts_the_new(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await KEEP_FIRST.run(conn, [row("a", 1, "Đầu tiên")])
        await KEEP_FIRST.run(conn, [row("a", 2, "Thứ hai"), row("b", 1, "Mới")])
    rows = await stored(engine)
    assert {k: (r["revision"], r["title"]) for k, r in rows.items()} == {
        "a": (1, "Đầu tiên"),
        "b": (1, "Mới"),
    }


async def test_rows_are_written_in_the_callers_transaction(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        await SAVE.run(session, [row("kept", 1, "Giữ")])
    # The upsert is the transaction's first statement: a rollback takes it back.
    async with sessions() as session:
        await SAVE.run(session, [row("dropped", 1, "Bỏ"), row("kept", 2, "Đổi")])
        await session.rollback()
    rows = await stored(engine)
    assert {k: (r["revision"], r["title"]) for k, r in rows.items()} == {"kept": (1, "Giữ")}


def test_a_python_side_default_must_come_with_the_rows() -> None:
    assert SAVE.compiled(DIALECT).columns == COLUMNS
    with_default = Table(
        "with_default",
        new_metadata(),
        Column("item_id", String(64), primary_key=True),
        Column("kind", String(16), nullable=False, default="tin"),
    )
    given = Upsert(with_default, ["item_id", "kind"])
    assert given.compiled(DIALECT).columns == ("item_id", "kind")
    with pytest.raises(ValueError, match="the rows must give 'kind'"):
        Upsert(with_default, ["item_id"]).compiled(DIALECT)


def test_unknown_columns_and_incomplete_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="not columns of items"):
        Upsert(items, [*COLUMNS, "nope"])
    with pytest.raises(ValueError, match="needs the conflict's columns"):
        Upsert(items, COLUMNS, set_=lambda new: {"title": new.title})
