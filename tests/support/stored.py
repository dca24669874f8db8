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


def expire_vector_store(database_url: str, store_id: str) -> None:
    """Move a store's expiry into the past, as if its days had passed (the column the sweeps
    read and the body the API shows)."""
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)) as db:
            db.execute(
                "UPDATE vector_stores SET expires_at = 1, "
                "body = json_set(body, '$.expires_at', 1) WHERE id = ?",
                (store_id,),
            )
            db.commit()
        return
    asyncio.run(_expire_postgres(database_url, store_id))


async def _expire_postgres(database_url: str, store_id: str) -> None:
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.execute(
            "UPDATE vector_stores SET expires_at = 1, "
            "body = jsonb_set(body, '{expires_at}', '1') WHERE id = $1",
            store_id,
        )
    finally:
        await connection.close()
