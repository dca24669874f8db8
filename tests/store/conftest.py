"""The `store` fixture: a migrated `SqlStore` on every backend, one event loop per test.

SQLite gets a fresh file per test. PostgreSQL (127.0.0.1:5432, user `postgres`, trust auth)
gets one database per test session, created here and dropped at the end; each test starts
from empty tables. PostgreSQL is not optional: when it is not reachable, its tests fail.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from support.postgres import POSTGRES_SERVER, PostgresDatabases

from threadline.store.schema import metadata
from threadline.store.sql_store import SqlStore

T = TypeVar("T")

BACKENDS = ["sqlite", "postgresql"]


class Runner:
    """Runs a coroutine to completion on the test's own event loop: `run(tx.op(...))`."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop

    def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The session's own databases, dropped when the session ends."""
    databases = PostgresDatabases()
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="session")
def postgres_url(postgres_databases: PostgresDatabases) -> str:
    """A database of this session's own, shared by its tests."""
    try:
        return postgres_databases.create()
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_SERVER} is required by the store suite and could not "
            f"be used: {exc!r}",
            pytrace=False,
        )


@pytest.fixture
def new_postgres_url(postgres_databases: PostgresDatabases, postgres_url: str) -> str:
    """An empty database of the test's own (`postgres_url` has checked the server is up)."""
    return postgres_databases.create()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test starts from a copy (migrating anew takes ~0.1 s)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "threadline.db"
    template = SqlStore(f"sqlite:///{path}")

    async def migrate() -> None:
        try:
            await template.migrate()
        finally:
            await template.close()

    asyncio.run(migrate())
    return path


@pytest.fixture
def event_loop_for_test() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def run(event_loop_for_test: asyncio.AbstractEventLoop) -> Runner:
    return Runner(event_loop_for_test)


async def _empty_tables(store: SqlStore) -> None:
    # DELETE, not TRUNCATE: on a few rows it takes a millisecond where TRUNCATE takes ~200.
    async with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture
def empty_postgres_url(postgres_url: str, run: Runner) -> str:
    """The session's PostgreSQL database, migrated and with every table emptied, for tests
    that open stores of their own on it."""
    store = SqlStore(postgres_url)
    try:
        run(store.migrate())
        run(_empty_tables(store))
    finally:
        run(store.close())
    return postgres_url


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, run: Runner) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        path = tmp_path / "threadline.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = SqlStore(url)
    try:
        run(store.migrate())
        if request.param == "postgresql":
            run(_empty_tables(store))
        yield store
    finally:
        run(store.close())
