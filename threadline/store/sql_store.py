"""The SQL Store: connections, transactions and commit notifications.

The queries themselves are in `sql.py`. Here a transaction is opened, committed, and, once
committed, announced: to this process's waiters directly and, on PostgreSQL, to every
other process through NOTIFY (delivered by PostgreSQL only if the transaction commits).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa

from threadline.store.engine import (
    SqliteConnection,
    create_postgres_engine,
    create_sqlite_engine,
    is_sqlite,
    plain_postgres_dsn,
)
from threadline.store.migrate import upgrade_to_head
from threadline.store.pg_listen import CHANNEL, PgListener
from threadline.store.signal import EventSignal
from threadline.store.sql import SqlTx

_NOTIFY = sa.text("SELECT pg_notify(:channel, :keys)")
_NOT_DURABLE = sa.text("SET LOCAL synchronous_commit TO OFF")


class SqlStore:
    def __init__(self, url: str, pool_size: int = 5):
        self.url = url
        self.signal = EventSignal()
        self._postgres = not is_sqlite(url)
        self._listener: PgListener | None = None
        if self._postgres:
            self.engine = create_postgres_engine(url, pool_size)
            self._listener = PgListener(plain_postgres_dsn(url), self.signal)
        else:
            self._sqlite_engine = create_sqlite_engine(url)
            self._sqlite: sa.Connection | None = None
            self._sqlite_durable = True
            # Transactions take turns on the one connection; a turn never blocks the loop.
            self._sqlite_turn = asyncio.Lock()

    @property
    def supports_many_workers(self) -> bool:
        return self._postgres

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[SqlTx]:
        if self._postgres:
            async with self.engine.begin() as conn:
                if not durable:
                    await conn.execute(_NOT_DURABLE)
                tx = SqlTx(conn)
                yield tx
                if tx.wakes:
                    await conn.execute(_NOTIFY, {"channel": CHANNEL, "keys": " ".join(tx.wakes)})
        else:
            async with self._sqlite_turn:
                connection = self._sqlite_connection(durable)
                with connection.begin():
                    tx = SqlTx(SqliteConnection(connection))
                    yield tx
        self.signal.notify(tx.wakes)

    def _sqlite_connection(self, durable: bool) -> sa.Connection:
        if self._sqlite is None:
            self._sqlite = self._sqlite_engine.connect()
            self._sqlite_durable = True
        if durable != self._sqlite_durable:
            level = "FULL" if durable else "NORMAL"
            # On the driver's connection: through SQLAlchemy it would open a transaction,
            # inside which SQLite refuses to change the setting.
            driver_connection = self._sqlite.connection.dbapi_connection
            assert driver_connection is not None
            driver_connection.execute(f"PRAGMA synchronous={level}")
            self._sqlite_durable = durable
        return self._sqlite

    async def migrate(self) -> None:
        async with self.transaction() as tx:
            await tx.conn.run_sync(upgrade_to_head)

    async def open(self) -> None:
        """Bring the schema up to date and start hearing other processes' commits."""
        await self.migrate()
        if self._listener is not None:
            self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        if self._postgres:
            await self.engine.dispose()
            return
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        self._sqlite_engine.dispose()
