"""The SQL Store: connections, transactions and commit notifications.

The queries themselves are in `sql.py`. Here a transaction is opened, committed, and, once
committed, announced: to this process's waiters directly and, on PostgreSQL, to every
other process through NOTIFY (delivered by PostgreSQL only if the transaction commits).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from threadline.store.drivers import PostgresDriver, SqliteDriver
from threadline.store.engine import (
    create_postgres_engine,
    create_sqlite_engine,
    is_sqlite,
    plain_postgres_dsn,
)
from threadline.store.group_commit import GroupCommit
from threadline.store.migrate import upgrade_to_head
from threadline.store.pg_listen import CHANNEL, PgListener
from threadline.store.signal import EventSignal
from threadline.store.sql import SqlTx
from threadline.store.sql_files import VectorColumn, detect_vector_column

_NOTIFY = "SELECT pg_notify($1, $2)"
_NOT_DURABLE = "SET LOCAL synchronous_commit TO OFF"


class SqlStore:
    def __init__(self, url: str, pool_size: int = 5):
        self.url = url
        self.signal = EventSignal()
        self._postgres = not is_sqlite(url)
        self._listener: PgListener | None = None
        # PostgreSQL: whether chunks carry a pgvector column (migration 0007), found by the
        # first transaction after start or a migration.
        self._vector_column: VectorColumn | None = None
        if self._postgres:
            self.engine = create_postgres_engine(url, pool_size)
            self._listener = PgListener(plain_postgres_dsn(url), self.signal)
            # A pool of its own, used one transaction at a time: a connection is opened only
            # where reserved transactions run (a worker), and one that broke is replaced.
            self._reserved = create_postgres_engine(url, pool_size=1, max_overflow=0)
            self._reserved_turn = asyncio.Lock()
        else:
            _require_sqlite(3, 38)
            self._sqlite = GroupCommit(url)

    @property
    def supports_many_workers(self) -> bool:
        return self._postgres

    @asynccontextmanager
    async def transaction(
        self, *, durable: bool = True, reserved: bool = False
    ) -> AsyncIterator[SqlTx]:
        if not self._postgres:
            async with self._sqlite_transaction(durable) as tx:
                yield tx
            return
        if reserved:
            async with self._reserved_transaction(durable) as tx:
                yield tx
        else:
            async with (
                self.engine.connect() as pooled,
                self._postgres_transaction(pooled, durable) as tx,
            ):
                yield tx
        self.signal.notify(tx.wakes)

    @asynccontextmanager
    async def _sqlite_transaction(self, durable: bool) -> AsyncIterator[SqlTx]:
        """In this process's group commit; waiters are woken as the group commits, even if
        the caller has stopped waiting for it."""
        wakes = set[str]()
        async with self._sqlite.transaction(
            durable=durable, on_commit=lambda: self.signal.notify(wakes)
        ) as connection:
            tx = SqlTx(SqliteDriver(connection), wakes)
            yield tx

    @asynccontextmanager
    async def _postgres_transaction(
        self, pooled: AsyncConnection, durable: bool
    ) -> AsyncIterator[SqlTx]:
        """On a connection of SQLAlchemy's pool (checked when taken from it), in a
        transaction of asyncpg's own."""
        connection = (await pooled.get_raw_connection()).driver_connection
        assert connection is not None
        try:
            async with connection.transaction():
                if not durable:
                    await connection.execute(_NOT_DURABLE)
                driver = PostgresDriver(connection, pooled.dialect)
                if self._vector_column is None:
                    self._vector_column = await detect_vector_column(driver)
                tx = SqlTx(driver)
                tx.vector_column = self._vector_column
                yield tx
                if tx.wakes:
                    await connection.execute(_NOTIFY, CHANNEL, " ".join(tx.wakes))
        finally:
            # A rollback that failed or was cut short leaves the connection inside the
            # transaction; the pool's reset knows nothing of transactions it did not open.
            if connection.is_in_transaction():
                await pooled.invalidate()

    @asynccontextmanager
    async def _reserved_transaction(self, durable: bool) -> AsyncIterator[SqlTx]:
        async with (
            self._reserved_turn,
            self._reserved.connect() as pooled,
            self._postgres_transaction(pooled, durable) as tx,
        ):
            yield tx

    async def migrate(self) -> None:
        if self._postgres:
            async with self.engine.begin() as conn:
                await conn.run_sync(upgrade_to_head)
            self._vector_column = None
            return
        engine = create_sqlite_engine(self.url)
        try:
            with engine.begin() as conn:
                upgrade_to_head(conn)
        finally:
            engine.dispose()

    async def open(self) -> None:
        """Bring the schema up to date and start hearing other processes' commits."""
        await self.migrate()
        if self._listener is not None:
            self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        if self._postgres:
            await self._reserved.dispose()
            await self.engine.dispose()
            return
        await self._sqlite.close()


def _require_sqlite(major: int, minor: int) -> None:
    """Changes write only their fields with SQLite's JSON `->` operator (3.38): an older
    library would fail every update, so it is refused at start, saying why."""
    if sqlite3.sqlite_version_info < (major, minor):
        raise SystemExit(
            f"Threadline needs SQLite {major}.{minor} or newer; this Python links SQLite "
            f"{sqlite3.sqlite_version}. Use a Python built with a newer SQLite, or PostgreSQL."
        )
