"""The loop's hot-path statements on the DBAPI cursor, compiled by SQLAlchemy once per dialect.

Why raw DBAPI here: per statement, Core's execution machinery (compile-cache look-up, execution
context, result set-up, events) cost more CPU than the database itself — ~16 µs of ~18 on SQLite and
~45 of ~60 µs on PostgreSQL for a one-row insert, measured — and a measurement runs ~16 of them.
What is kept from SQLAlchemy: the SQL text (compiled from the same Core statement, so dialect
spelling, casts and ON CONFLICT clauses are SQLAlchemy's) and the columns' bind processors (JSON,
dates, booleans, blobs), so a row is stored exactly as Core would store it. A DBAPI error is raised
as SQLAlchemy's ``DBAPIError`` (a lost connection invalidated, as Core does), so the store's retries
and error messages are unchanged. Not kept: Core's events (``before_cursor_execute``) and result
processing — selects here return raw rows, so only columns that need no conversion are selected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

_Compiled = tuple[str, tuple[str, ...] | None, tuple[tuple[str, Callable[[Any], Any]], ...]]


class RawStatement:
    """A Core statement run on the DBAPI cursor. Called with one row (a dict) or several (a list of
    dicts with the same keys: one ``executemany``); returns the cursor (``fetchone`` for RETURNING
    and selects). Compiled once per (dialect, parameter names)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def __call__(self, conn: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        many = not isinstance(params, Mapping)
        rows: Sequence[Mapping[str, Any]] = params if many else [params]  # type: ignore[list-item,assignment]
        dialect = conn.dialect
        key = (dialect.name, tuple(rows[0]))
        compiled = self._compiled.get(key) or self._compile(dialect, key, many)
        sql, order, processors = compiled
        bound = [_bind(row, order, processors) for row in rows]
        dbapi_connection = conn.connection.dbapi_connection
        cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(sql, bound)
            else:
                cursor.execute(sql, bound[0])
        except dialect.loaded_dbapi.Error as exc:  # type: ignore[attr-defined]
            invalidated = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if invalidated:
                conn.invalidate(exc)
            raise DBAPIError.instance(sql, bound, exc, dialect.loaded_dbapi.Error,  # type: ignore[attr-defined]
                                      connection_invalidated=invalidated, dialect=dialect) from exc
        return cursor

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first row of a select (or a RETURNING), raw, or None; the cursor is closed."""
        cursor = self(conn, params)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect, key: tuple[str, tuple[str, ...]], many: bool) -> _Compiled:
        names = key[1]
        compiled = self.statement.compile(dialect=dialect, column_keys=list(names), for_executemany=many)  # type: ignore[call-arg]
        missing = set(compiled.binds) - set(names)
        if missing:  # Core would fill a column default; here every column is given by the caller
            raise ValueError(f"{compiled.string!r} needs parameters {sorted(missing)} not given")
        processors = []
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((name, process))
        order = tuple(compiled.positiontup) if dialect.positional else None  # type: ignore[attr-defined]
        result: _Compiled = (compiled.string, order, tuple(processors))
        self._compiled[key] = result
        return result


def _bind(row: Mapping[str, Any], order: tuple[str, ...] | None, processors: Sequence[tuple[str, Callable[[Any], Any]]]) -> Any:
    values = dict(row)
    for name, process in processors:
        values[name] = process(values[name])
    return values if order is None else tuple(values[name] for name in order)
