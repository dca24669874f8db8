"""Turns a `THREADLINE_DATABASE_URL` into a configured engine.

PostgreSQL gets an async engine (asyncpg) with a connection pool. SQLite gets one plain
synchronous connection, used from the event loop: SQLite answers in microseconds and takes
one writer at a time anyway, so handing each statement to a helper thread (as an async
driver does) only adds two thread switches per statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from threadline.domain.errors import InvalidRequest

T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _driver_url(url: str) -> str:
    """Accept the plain URLs users write and pick the driver for them."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("sqlite://", "postgresql+asyncpg://")):
        return url
    raise InvalidRequest(f"Unsupported database URL '{url}': use sqlite:/// or postgresql://.")


def plain_postgres_dsn(url: str) -> str:
    """The URL as asyncpg's own `connect` takes it (no SQLAlchemy driver suffix)."""
    return _driver_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


def create_postgres_engine(url: str, pool_size: int = 5) -> AsyncEngine:
    """Each process holds at most `2 * pool_size` connections: size it so that all API and
    worker processes together stay under the server's `max_connections`.

    A pooled connection is checked before each use (one round trip): after a database
    restart or failover every pooled connection is dead, and without the check each would
    fail a user's request once before being replaced."""
    return create_async_engine(
        _driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=60,
        pool_pre_ping=True,
    )


def create_sqlite_engine(url: str) -> sa.Engine:
    _driver_url(url)
    engine = sa.create_engine(url, poolclass=sa.pool.StaticPool)
    event.listen(engine, "connect", _sqlite_pragmas)
    # Let SQLAlchemy, not the sqlite3 module, say where transactions begin (a plain BEGIN,
    # before reads too), so that a transaction's reads and writes are one unit.
    event.listen(engine, "begin", _begin)
    return engine


def _begin(connection: sa.Connection) -> None:
    # On the driver's connection: a statement through SQLAlchemy costs ten times as much.
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed write survives a power cut, not only a killed process.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class SqliteConnection:
    """The slice of `AsyncConnection` the queries use, over a synchronous SQLite connection."""

    def __init__(self, connection: sa.Connection):
        self.connection = connection

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.connection.execute(statement, parameters)

    async def run_sync(self, function: Callable[[sa.Connection], T]) -> T:
        return function(self.connection)
