"""Statements written once in SQLAlchemy Core, rendered once per dialect, run on the driver.

SQLAlchemy renders each statement for SQLite and for PostgreSQL (placeholders, casts,
`FOR UPDATE`, `RETURNING`), and its column types say how a value is converted on the way in
and out (a body is JSON). Executing through SQLAlchemy's own connection cost 30-60 µs per
statement above what the driver itself takes, several times SQLite's own time: a third of
the service's CPU per run. So a `Query` is rendered the first time a dialect uses it and
from then on the driver gets the SQL string and the converted parameters directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

Row = Sequence[Any]
Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class _Placeholder:
    name: str
    # A value SQLAlchemy put in the statement itself (a literal `LIMIT 1`, `status = 'queued'`).
    fixed: Any
    is_fixed: bool
    convert: Convert | None


@dataclass(frozen=True)
class Rendered:
    """A statement as one dialect's driver takes it."""

    sql: str
    placeholders: tuple[_Placeholder, ...]
    # The result columns that need converting (a JSON body), by position: most need none,
    # and going through every column of every row for them cost a row five times as much.
    conversions: tuple[tuple[int, Convert], ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for placeholder in self.placeholders:
            value = placeholder.fixed if placeholder.is_fixed else params[placeholder.name]
            if placeholder.convert is not None and value is not None:
                value = placeholder.convert(value)
            values.append(value)
        return values

    def row(self, raw: Row) -> tuple[Any, ...]:
        if not self.conversions:
            return tuple(raw)
        values = list(raw)
        for index, convert in self.conversions:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return tuple(values)


class Query:
    """One statement, rendered lazily for each dialect that runs it."""

    def __init__(self, statement: sa.ClauseElement):
        self.statement = statement
        self._rendered: dict[str, Rendered] = {}

    def rendered(self, dialect: Dialect) -> Rendered:
        found = self._rendered.get(dialect.name)
        if found is None:
            found = self._rendered[dialect.name] = _render(self.statement, dialect)
        return found


def _render(statement: sa.ClauseElement, dialect: Dialect) -> Rendered:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.post_compile_params:
        raise TypeError(f"rendered anew per execution, use OneOf or constants: {statement}")
    placeholders = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise TypeError(f"a value computed per execution in: {statement}")
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        placeholders.append(_Placeholder(name, bind.effective_value, not bind.required, convert))
    exported = getattr(statement, "exported_columns", ())
    conversions = []
    for index, column in enumerate(exported):
        convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if convert is not None:
            conversions.append((index, convert))
    return Rendered(compiled.string, tuple(placeholders), tuple(conversions))


def param(name: str, type_: Any) -> sa.BindParameter[Any]:
    """A named parameter the caller must give (typed, so a body is converted to JSON)."""
    return sa.bindparam(name, type_=type_, required=True)


def constants(values: Sequence[str]) -> list[sa.ColumnElement[Any]]:
    """Strings for `column.in_(...)`, written into the SQL itself: a list of bound values
    would be rendered anew for each execution."""
    return [sa.literal_column("'" + value.replace("'", "''") + "'") for value in values]


class OneOf(sa.ColumnElement[bool]):
    """`column` is one of the values in a list parameter: a whole list is one placeholder,
    so a statement renders once whatever the list's length (SQLAlchemy's `IN` renders anew
    for each length)."""

    inherit_cache = False  # rendered by `Query`, never through SQLAlchemy's statement cache
    # Untyped, not Boolean: SQLAlchemy writes a Boolean expression in a WHERE as `(...) = 1`
    # on SQLite (which has no boolean type), and SQLite then scans the whole table instead
    # of looking the values up in the column's index.
    type = cast("sa.types.TypeEngine[bool]", sa.types.NullType())

    def __init__(self, column: sa.ColumnElement[Any], name: str, item_type: Any):
        self.column = column
        self.values = param(name, sa.JSON().with_variant(ARRAY(item_type), "postgresql"))


@compiles(OneOf, "sqlite")
def _one_of_sqlite(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"({column} IN (SELECT value FROM json_each({values})))"


@compiles(OneOf, "postgresql")
def _one_of_postgresql(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"({column} = ANY({values}))"


class JsonMerge(sa.ColumnElement[Any]):
    """`column`, a JSON object, with the top-level fields named in `keys` set from the JSON
    object parameter `name`: a change writes the fields it changes, never a whole body read
    earlier, so two writers that change different fields cannot undo each other. A field set
    to null stays, as null. PostgreSQL only: on SQLite, which runs one writing transaction at
    a time, the store merges in Python (`sql.SqlTx._update_body`)."""

    inherit_cache = False

    def __init__(self, column: sa.ColumnElement[Any], name: str, keys: Sequence[str]):
        for key in keys:
            if not key.isidentifier():
                raise ValueError(f"not a field name: {key!r}")
        self.column = column
        self.type = column.type
        self.patch = param(name, column.type)
        self.keys = tuple(keys)


@compiles(JsonMerge, "postgresql")
def _json_merge_postgresql(element: JsonMerge, compiler: SQLCompiler, **kw: Any) -> str:
    column, patch = compiler.process(element.column, **kw), compiler.process(element.patch, **kw)
    return f"({column} || {patch})"
