"""Migrations: the schema they build is the one `schema.py` describes, on every backend,
and processes that start together on one database apply them in turn.

The queries are written against `schema.py`; a database is built by the migrations. A
migration that forgets what `schema.py` gained (or drops an index a query still relies on)
shows here, not as a slow or failing query in a user's database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from threadline.store.engine import create_postgres_engine, create_sqlite_engine
from threadline.store.migrate import alembic_config
from threadline.store.schema import described_here, metadata
from threadline.store.sql_store import SqlStore

T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


def _include(name: str | None, kind: str, _parents: Any) -> bool:
    return described_here(name, kind)


def _differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"include_name": _include})
    return list(compare_metadata(context, metadata))


def test_the_migrated_schema_is_the_one_the_queries_are_written_against(
    store: SqlStore, run: Runner
) -> None:
    if store.supports_many_workers:  # PostgreSQL

        async def read() -> list[Any]:
            async with store.engine.connect() as connection:
                return await connection.run_sync(_differences)

        assert run(read()) == []
        return
    engine = create_sqlite_engine(store.url)
    try:
        with engine.connect() as connection:
            assert _differences(connection) == []
    finally:
        engine.dispose()


# What `threadline serve` and `threadline worker` do first, in a process of its own: alembic
# keeps its state in globals, so migrations never run side by side within one process.
_MIGRATE = """
import asyncio, sys
from threadline.store.sql_store import SqlStore

async def main():
    store = SqlStore(sys.argv[1], pool_size=1)
    try:
        await store.migrate()
    finally:
        await store.close()

asyncio.run(main())
"""


def _upgrade(url: str, revision: str) -> None:
    """Migrate a PostgreSQL database to `revision`, as `SqlStore.migrate` does to the head."""

    async def upgrade() -> None:
        engine = create_postgres_engine(url, pool_size=1)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(
                    lambda sync: command.upgrade(alembic_config(sync), revision)
                )
        finally:
            await engine.dispose()

    asyncio.run(upgrade())


@pytest.mark.parametrize("starting_at", [None, "0001"], ids=["new database", "at 0001"])
def test_processes_that_start_together_on_postgresql_migrate_in_turn(
    new_postgres_url: str, starting_at: str | None
) -> None:
    """`serve` and `threadline worker`s started at once each migrate as they start: each
    waits for the one before it, then finds nothing left to do."""
    if starting_at is not None:
        _upgrade(new_postgres_url, starting_at)

    starting = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE, new_postgres_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    failures = [process.communicate(timeout=60)[1] for process in starting]
    assert [process.returncode for process in starting] == [0] * 4, failures
    store = SqlStore(new_postgres_url, pool_size=1)

    async def differences() -> list[Any]:
        try:
            async with store.engine.connect() as connection:
                return await connection.run_sync(_differences)
        finally:
            await store.close()

    assert asyncio.run(differences()) == []
