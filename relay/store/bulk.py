"""Many rows in one statement, through the database driver's own executemany.

Why: the group writer stores a whole group of accepted submissions with one executemany per
table, and SQLAlchemy's per-row work around it (compiled-cache lookup, constructing each row's
parameters, the execution context) cost more than SQLite's own insert: about 70 us of CPU a
submission, the largest step of accepting one (docs/performance.md). `BulkStatement` compiles
the statement once per dialect and then hands the driver plain tuples, converted by the very
bind processors SQLAlchemy would apply (UTC datetimes, booleans), inside the caller's
transaction. On SQLite only, the default deployment; elsewhere it runs through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert


@dataclass(frozen=True)
class _Plan:
    sql: str
    #: the row's values in the statement's order (one C call per row)
    take: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    #: positions (in what `take` returns) whose values go through a bind processor
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: (position, value) the statement itself fixes (a literal in an ON CONFLICT clause),
    #: already converted, in ascending order
    fixed: tuple[tuple[int, Any], ...]


_UNSET = object()


class BulkStatement:
    """An INSERT (or upsert) whose rows all carry the same keys, run as one executemany."""

    def __init__(self, statement: Insert) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def _plan(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        """The statement compiled for `dialect` and rows with these `keys` (made once)."""
        plan = self._plans.get((dialect.name, keys))
        if plan is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            assert isinstance(compiled, SQLCompiler)  # noqa: S101 - an INSERT compiles to SQL
            names: list[str] = []
            convert: list[tuple[int, Callable[[Any], Any]]] = []
            fixed: list[tuple[int, Any]] = []
            for position, name in enumerate(compiled.positiontup or ()):
                bind = compiled.binds[name]
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if name not in keys:
                    value = bind.effective_value
                    if value is None:
                        msg = f"bulk statement: no value for parameter {name!r}"
                        raise ValueError(msg)
                    fixed.append((position, processor(value) if processor else value))
                    continue
                if processor is not None:
                    convert.append((len(names), processor))
                names.append(name)
            take = _taker(names)
            plan = _Plan(compiled.string, take, tuple(convert), tuple(fixed))
            self._plans[dialect.name, keys] = plan
        return plan

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` (all with the same keys) in the connection's transaction."""
        if not rows:
            return
        if conn.dialect.name != "sqlite":
            conn.execute(self.statement, list(rows))
            return
        plan = self._plan(conn.dialect, tuple(rows[0]))
        # a row repeats its moment (received, updated, next attempt, …) and a group shares
        # it often: each distinct value goes through its processor once per call
        converted: dict[tuple[int, Any], Any] = {}
        values = []
        for row in rows:
            out = list(plan.take(row))
            for position, processor in plan.convert:
                value = out[position]
                if value is not None:
                    key = (id(processor), value)
                    done = converted.get(key, _UNSET)
                    if done is _UNSET:
                        done = converted[key] = processor(value)
                    out[position] = done
            for position, value in plan.fixed:
                out.insert(position, value)
            values.append(tuple(out))
        driver_error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(plan.sql, values)
        except driver_error as exc:  # as SQLAlchemy would raise it (the writer retries on it)
            raise DBAPIError.instance(plan.sql, None, exc, driver_error) from None
        finally:
            cursor.close()


def _taker(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """itemgetter, always giving a tuple (it gives the bare value for one name)."""
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    return itemgetter(*names)
