"""PostgreSQL's ``INSERT … ON CONFLICT`` over many rows, built and compiled once.

SQLAlchemy 2.0 gives PostgreSQL's ``insert().on_conflict_do_*()`` no cache key, so every
execution compiles it again (more CPU than the batch's rows cost). An ``Upsert`` builds the
dialect statement once from the table and the conflict spec and compiles it once per dialect.

The rows go as one array per column: ``INSERT … SELECT … FROM unnest($1, $2, …) ON CONFLICT
…``, one statement for the batch. An ``executemany`` of ``INSERT … VALUES`` (one round trip
too) made PostgreSQL run the statement once per row: an executor started and stopped, and the
table's statement triggers fired, for every row. A conflict update may not touch a row twice in
one statement, so a batch that updates a key twice goes as several statements, in order. A
column whose values cannot travel as an array element (an array of anything but text) makes
the upsert an ``executemany`` as before.

Values are given as the driver takes them. JSON columns take JSON text (a ``str``, e.g. from
pydantic's ``model_dump_json``) as is; any other JSON value goes through the column's own
serialiser. Text array columns take lists of ``str``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.types import ARRAY, JSON, String

# The row proposed for insertion (``excluded``), by column name.
Proposed = Any
SetClause = Callable[[Proposed], Mapping[str, Any]]
Condition = Callable[[Proposed], ColumnElement[bool]]

_Processor = Callable[[Any], Any] | None


def from_proposed(proposed: Proposed, columns: Sequence[str]) -> dict[str, Any]:
    """``SET column = excluded.column`` for each of ``columns`` (the usual update)."""
    return {name: proposed[name] for name in columns}


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per parameter, in the order the SQL numbers them: the row's column it takes (None: the
    # constant of the conflict clause), what the value goes through, the constant.
    slots: tuple[tuple[str | None, _Processor, Any], ...]

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.slots if name is not None)

    @cached_property
    def plain(self) -> bool:
        """Every parameter is a row's value, passed as it is."""
        return all(name is not None and process is None for name, process, _ in self.slots)

    # True: each column's parameter is an array of the rows' values (``unnest``); else the
    # statement takes one row (``executemany``).
    batched: bool = False


class Upsert:
    """``INSERT INTO table (columns) VALUES … ON CONFLICT …`` for many rows at once.

    ``set_`` None is ``DO NOTHING`` (on ``conflict``'s unique index, or any conflict when
    ``conflict`` is empty); else ``DO UPDATE SET set_(excluded)`` on ``conflict``'s index,
    ``WHERE where(excluded)`` when given. ``set_`` and ``where`` are expressions of the
    proposed row (``excluded``), the stored row (the table's columns), SQL functions and
    constants. A column with a Python-side default is given by the rows (refused otherwise).
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        conflict: Sequence[str] = (),
        set_: SetClause | None = None,
        where: Condition | None = None,
    ) -> None:
        unknown = [c for c in (*columns, *conflict) if c not in table.c]
        if unknown:
            raise ValueError(f"not columns of {table.name}: {unknown}")
        if set_ is not None and not conflict:
            raise ValueError("an update on conflict needs the conflict's columns")
        if where is not None and set_ is None:
            raise ValueError("a condition applies to an update on conflict only")
        self.table = table
        self.columns = tuple(columns)
        # A conflict update touches each key once per statement (PostgreSQL refuses more).
        self.unique_keys: tuple[str, ...] = tuple(conflict) if set_ is not None else ()
        self._conflict = ([table.c[c] for c in conflict] or None, set_, where)
        self.statement = self._on_conflict(insert(table))
        self.batch_statement = self._batch_statement()
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}

    def _on_conflict(self, stmt: Any) -> Any:
        index, set_, where = self._conflict
        if set_ is None:
            return stmt.on_conflict_do_nothing(index_elements=index)
        return stmt.on_conflict_do_update(
            index_elements=index,
            set_=dict(set_(stmt.excluded)),
            where=where(stmt.excluded) if where is not None else None,
        )

    def _batch_statement(self) -> Any | None:
        """``INSERT … SELECT … FROM unnest(<one array per column>)``; None when a column's
        values cannot travel as array elements."""
        carriers = {name: _carrier(self.table.c[name]) for name in self.columns}
        if any(carrier is None for carrier in carriers.values()):
            return None
        arrays = [
            bindparam(name, type_=ARRAY(carrier[0]))
            for name, carrier in carriers.items()
            if carrier
        ]
        rows = func.unnest(*arrays).table_valued(*self.columns).render_derived(name="batch")
        values = [
            cast(rows.c[name], self.table.c[name].type) if carrier[1] else rows.c[name]
            for name, carrier in carriers.items()
            if carrier
        ]
        return self._on_conflict(insert(self.table).from_select(self.columns, select(*values)))

    def compiled(self, dialect: Dialect) -> _Compiled:
        """The statement compiled for ``dialect`` (once) and what each value goes through."""
        key = (dialect.name, str(dialect.driver), dialect.paramstyle)
        done = self._compiled.get(key)
        if done is None:
            done = self._compiled[key] = self._compile(dialect)
        return done

    def _compile(self, dialect: Dialect) -> _Compiled:
        if not dialect.positional:
            raise ValueError(f"a positional driver is expected, not {dialect.driver}")
        batch = self.batch_statement if dialect.name == "postgresql" else None
        batched = batch is not None
        if batch is not None:
            compiled = batch.compile(dialect=dialect)
        else:
            compiled = self.statement.compile(
                dialect=dialect, column_keys=list(self.columns), for_executemany=True
            )
        slots: list[tuple[str | None, _Processor, Any]] = []
        for name in compiled.positiontup or ():
            if name in self.columns:
                process = _processor(self.table.c[name], dialect)
                if batched:
                    process = _text_of(self.table.c[name], process)
                slots.append((name, process, None))
                continue
            bind = compiled.binds[name]
            if name in self.table.c or bind.callable is not None or bind.required:
                # A Python-side default is computed per execution: the rows must give it.
                raise ValueError(f"upsert on {self.table.name}: the rows must give {name!r}")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            slots.append((None, None, bind.value if process is None else process(bind.value)))
        missing = set(self.columns) - {name for name, _, _ in slots}
        if missing:
            raise ValueError(f"upsert on {self.table.name}: columns not inserted: {missing}")
        return _Compiled(compiled.string, tuple(slots), batched)

    async def run(
        self, executor: AsyncSession | AsyncConnection, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert or update ``rows`` (each with every column), in order, in the executor's
        transaction: one statement (more when a conflict update meets a key again)."""
        if not rows:
            return
        conn = await executor.connection() if isinstance(executor, AsyncSession) else executor
        compiled = self.compiled(conn.dialect)
        if compiled.batched:
            for part in self._parts(rows):
                await conn.exec_driver_sql(compiled.sql, _arrays(compiled, part))
            return
        params: list[tuple[Any, ...]]
        if compiled.plain:
            columns = compiled.columns
            params = [tuple(row[c] for c in columns) for row in rows]
        else:
            slots = compiled.slots
            params = [
                tuple(
                    value if c is None else row[c] if p is None else p(row[c])
                    for c, p, value in slots
                )
                for row in rows
            ]
        await conn.exec_driver_sql(compiled.sql, params)

    def _parts(self, rows: Sequence[Mapping[str, Any]]) -> list[Sequence[Mapping[str, Any]]]:
        """``rows`` cut, in order, where a conflict update would meet a key a second time."""
        if not self.unique_keys:
            return [rows]
        parts: list[Sequence[Mapping[str, Any]]] = []
        start, seen = 0, set[tuple[Any, ...]]()
        for i, row in enumerate(rows):
            key = tuple(row[c] for c in self.unique_keys)
            if key in seen:
                parts.append(rows[start:i])
                start, seen = i, set()
            seen.add(key)
        parts.append(rows[start:])
        return parts


def _arrays(compiled: _Compiled, rows: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
    """The statement's parameters for ``rows``: each column's values as one list."""
    return tuple(
        value
        if c is None
        else [row[c] for row in rows]
        if p is None
        else [p(row[c]) for row in rows]
        for c, p, value in compiled.slots
    )


def _carrier(column: ColumnClause[Any]) -> tuple[TypeEngine[Any], bool] | None:
    """How a column's values travel as elements of an array parameter: the element type, and
    whether the statement casts it to the column's type (JSON and text arrays go as text:
    PostgreSQL has no array of arrays of varying length). None: they cannot."""
    column_type: TypeEngine[Any] = column.type
    if isinstance(column_type, JSON):
        return Text(), True
    if isinstance(column_type, ARRAY):
        return (Text(), True) if isinstance(column_type.item_type, String) else None
    return column_type, False


def _text_of(column: ColumnClause[Any], process: _Processor) -> _Processor:
    """A text array column's value as PostgreSQL's array literal (``{"a","b"}``), which the
    statement casts to the column's type; JSON columns are text already."""
    if not isinstance(column.type, ARRAY):
        return process

    def literal(value: Any) -> str | None:
        if value is None:
            return None
        return "{" + ",".join(_element(item) for item in value) + "}"

    return literal


def _element(item: str | None) -> str:
    if item is None:
        return "NULL"
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _processor(column: ColumnClause[Any], dialect: Dialect) -> _Processor:
    """What a value of ``column`` goes through on its way to the driver (None: nothing)."""
    column_type: TypeEngine[Any] = column.type
    if isinstance(column_type, ARRAY) and _processor_of(column_type.item_type, dialect) is None:
        return None  # the driver takes a list as it is; the array's own would copy it
    process = _processor_of(column_type, dialect)
    if process is None or not isinstance(column_type, JSON):
        return process
    serialise = process

    def json_value(value: Any) -> Any:
        # JSON text given by the caller is the value as the driver takes it.
        return value if value is None or isinstance(value, str) else serialise(value)

    return json_value


def _processor_of(column_type: TypeEngine[Any], dialect: Dialect) -> _Processor:
    return column_type.dialect_impl(dialect).bind_processor(dialect)
