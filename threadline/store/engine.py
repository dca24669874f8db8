"""Turns a `THREADLINE_DATABASE_URL` into connections.

PostgreSQL gets SQLAlchemy's async engine (asyncpg) for its connection pool. SQLite gets one
plain `sqlite3` connection, used from the event loop: SQLite answers in microseconds and
takes one writer at a time anyway, so handing each statement to a helper thread (as an async
driver does) only adds two thread switches per statement. Both run their queries on the
driver itself (`drivers.py`); SQLAlchemy's own connections serve only the migrations.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from threadline import json_codec
from threadline.domain.errors import InvalidRequest


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


def create_postgres_engine(
    url: str, pool_size: int = 5, max_overflow: int | None = None
) -> AsyncEngine:
    """Each process holds at most `2 * pool_size` connections: size it so that all API and
    worker processes together stay under the server's `max_connections`.

    A pooled connection is checked before each use (one round trip): after a database
    restart or failover every pooled connection is dead, and without the check each would
    fail a user's request once before being replaced."""
    return create_async_engine(
        _driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=60,
        pool_pre_ping=True,
        json_serializer=json_codec.dumps,
        # JSONB hands back text of its own, which always holds `": ` (`json_codec.loads`
        # would find its mark in every body), and keeps integers beyond 64 bits exactly.
        json_deserializer=json.loads,
    )


def sqlite_file(url: str) -> str | None:
    """The database file's path; None for an in-memory database."""
    database = sa.make_url(_driver_url(url)).database
    return None if not database or database == ":memory:" else database


def connect_sqlite(url: str) -> sqlite3.Connection:
    """The store's connection. In autocommit mode: the store says where transactions begin
    (a plain BEGIN, before reads too), so that a transaction's reads and writes are one unit."""
    connection = sqlite3.connect(sqlite_file(url) or ":memory:", isolation_level=None)
    _sqlite_pragmas(connection, None)
    return connection


def create_sqlite_engine(url: str) -> sa.Engine:
    """An engine for the migrations, with the store's settings."""
    engine = sa.create_engine(_driver_url(url), poolclass=sa.pool.NullPool)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _begin)
    return engine


def _begin(connection: sa.Connection) -> None:
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed write survives a power cut, not only a killed process. (The store's
    # own connection commits at NORMAL and syncs durable groups itself: `group_commit.py`.)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
