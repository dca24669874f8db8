"""The schema the migrations build is the one `schema.py` describes, on every backend.

The queries are written against `schema.py`; a database is built by the migrations. A
migration that forgets what `schema.py` gained (or drops an index a query still relies on)
shows here, not as a slow or failing query in a user's database.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from threadline.store.engine import create_sqlite_engine
from threadline.store.schema import metadata
from threadline.store.sql_store import SqlStore

T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


def _differences(connection: sa.Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


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
