"""Counts of what a server's database holds, read from the database itself.

Threads have no list route in the wire format, so "nothing was stored" after a refused
request is checked here, beside the server, rather than through the API.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import asyncpg

TABLES = ("threads", "messages", "runs")


def stored_rows(database_url: str) -> dict[str, int]:
    """How many threads, messages and runs the database holds (committed rows)."""
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)) as db:
            return {
                table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in TABLES
            }
    return asyncio.run(_postgres_rows(database_url))


async def _postgres_rows(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
            for table in TABLES
        }
    finally:
        await connection.close()
