"""Databases of the test run's own on the machine's PostgreSQL (127.0.0.1:5432, trust auth).

Every database made here is dropped by `drop_all` at the end of the session.
"""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres", timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class PostgresDatabases:
    def __init__(self, prefix: str = "threadline_test"):
        self.prefix = f"{prefix}_{secrets.token_hex(4)}"
        self.names: list[str] = []

    def create(self) -> str:
        """A new empty database; returns its URL."""
        name = f"{self.prefix}_{len(self.names)}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        return f"{POSTGRES_SERVER}/{name}"

    def drop_all(self) -> None:
        for name in self.names:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.names.clear()
