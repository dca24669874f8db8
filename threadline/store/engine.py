"""Turns a `THREADLINE_DATABASE_URL` into a configured async engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from threadline.domain.errors import InvalidRequest


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def async_url(url: str) -> str:
    """Accept the plain URLs users write and pick the async driver for them."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise InvalidRequest(f"Unsupported database URL '{url}': use sqlite:/// or postgresql://.")


def plain_postgres_dsn(url: str) -> str:
    """The URL as asyncpg's own `connect` takes it (no SQLAlchemy driver suffix)."""
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


def create_engine(url: str, pool_size: int = 5) -> AsyncEngine:
    """On PostgreSQL each process holds at most `2 * pool_size` connections: size it so that
    all API and worker processes together stay under the server's `max_connections`."""
    if not is_sqlite(url):
        return create_async_engine(
            async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_timeout=60
        )
    # One connection: SQLite has a single writer anyway, and one connection means no
    # "database is locked" retries, and every transaction sees the previous one.
    engine = create_async_engine(async_url(url), pool_size=1, max_overflow=0, pool_timeout=300)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed write survives a power cut, not only a killed process.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
