"""Run rendered queries on a driver's connection: `sqlite3`'s or `asyncpg`'s.

The only place that knows how each driver takes parameters, hands back rows and counts, and
reports a duplicate key. Transactions are opened and closed by the store (`sql_store.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, Protocol

import asyncpg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.interfaces import Dialect

from threadline import json_codec
from threadline.store.compiled import Query

NO_PARAMS: Mapping[str, Any] = {}
SQLITE_DIALECT = SQLiteDialect_pysqlite(
    json_serializer=json_codec.dumps, json_deserializer=json_codec.loads
)


class DuplicateKey(Exception):
    """A write broke a unique index (for runs: the thread's one active run)."""


class Driver(Protocol):
    # Whether `SELECT ... FOR UPDATE` holds a row to the commit (SQLite has one writer at a
    # time instead).
    holds_row_locks: bool

    async def fetch(
        self, query: Query, params: Mapping[str, Any] = NO_PARAMS
    ) -> list[tuple[Any, ...]]:
        """The statement's rows, each value converted as its column's type says."""
        ...

    async def execute(self, query: Query, params: Mapping[str, Any] = NO_PARAMS) -> int:
        """Run a statement; how many rows it wrote."""
        ...

    async def execute_sql(self, sql: str) -> list[tuple[Any, ...]]:
        """A plain SQL string with no parameters, for tests looking underneath the store."""
        ...


class SqliteDriver:
    holds_row_locks = False

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    async def fetch(
        self, query: Query, params: Mapping[str, Any] = NO_PARAMS
    ) -> list[tuple[Any, ...]]:
        rendered = query.rendered(SQLITE_DIALECT)
        cursor = self._run(rendered.sql, rendered.arguments(params))
        return [rendered.row(raw) for raw in cursor.fetchall()]

    async def execute(self, query: Query, params: Mapping[str, Any] = NO_PARAMS) -> int:
        rendered = query.rendered(SQLITE_DIALECT)
        return int(self._run(rendered.sql, rendered.arguments(params)).rowcount)

    async def execute_sql(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.connection.execute(sql).fetchall()]

    def _run(self, sql: str, arguments: list[Any]) -> sqlite3.Cursor:
        try:
            return self.connection.execute(sql, arguments)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise DuplicateKey(str(exc)) from exc
            raise


class PostgresDriver:
    holds_row_locks = True

    def __init__(self, connection: asyncpg.Connection, dialect: Dialect):
        self.connection = connection
        self.dialect = dialect

    async def fetch(
        self, query: Query, params: Mapping[str, Any] = NO_PARAMS
    ) -> list[tuple[Any, ...]]:
        rendered = query.rendered(self.dialect)
        try:
            raws = await self.connection.fetch(rendered.sql, *rendered.arguments(params))
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc
        return [rendered.row(raw) for raw in raws]

    async def execute(self, query: Query, params: Mapping[str, Any] = NO_PARAMS) -> int:
        rendered = query.rendered(self.dialect)
        try:
            status = await self.connection.execute(rendered.sql, *rendered.arguments(params))
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc
        # A command tag: "UPDATE 3", "DELETE 0", "INSERT 0 1".
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def execute_sql(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.connection.fetch(sql)]
