"""PostgreSQL's ``INSERT … ON CONFLICT`` over many rows, built and compiled once.

SQLAlchemy 2.0 gives PostgreSQL's ``insert().on_conflict_do_*()`` no cache key, so every
execution compiles it again (more CPU than the batch's rows cost). An ``Upsert`` builds the
dialect statement once from the table and the conflict spec, compiles it once per dialect, and
runs it over a list of rows as one driver ``executemany``: each row's values go to the driver
in the compiled order, without SQLAlchemy's per-row parameter processing.

Values are given as the driver takes them. JSON columns take JSON text (a ``str``, e.g. from
pydantic's ``model_dump_json``) as is; any other JSON value goes through the column's own
serialiser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.types import ARRAY, JSON

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
        stmt = insert(table)
        index = [table.c[c] for c in conflict] or None
        if set_ is None:
            self.statement = stmt.on_conflict_do_nothing(index_elements=index)
        else:
            self.statement = stmt.on_conflict_do_update(
                index_elements=index,
                set_=dict(set_(stmt.excluded)),
                where=where(stmt.excluded) if where is not None else None,
            )
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        """The statement compiled for ``dialect`` (once) and what each value goes through."""
        key = (dialect.name, str(dialect.driver), dialect.paramstyle)
        done = self._compiled.get(key)
        if done is None:
            done = self._compiled[key] = self._compile(dialect)
        return done

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(
            dialect=dialect, column_keys=list(self.columns), for_executemany=True
        )
        if not dialect.positional:
            raise ValueError(f"a positional driver is expected, not {dialect.driver}")
        slots: list[tuple[str | None, _Processor, Any]] = []
        for name in compiled.positiontup or ():
            if name in self.columns:
                slots.append((name, _processor(self.table.c[name], dialect), None))
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
        return _Compiled(compiled.string, tuple(slots))

    async def run(
        self, executor: AsyncSession | AsyncConnection, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert or update ``rows`` (each with every column), in order, in the executor's
        transaction: one ``executemany``."""
        if not rows:
            return
        conn = await executor.connection() if isinstance(executor, AsyncSession) else executor
        compiled = self.compiled(conn.dialect)
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
