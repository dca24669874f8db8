"""The SQL Store: engine, transactions and commit notifications, for SQLite and PostgreSQL.

The queries themselves are in `sql.py`. Here a transaction is opened, committed, and, once
committed, announced: to this process's waiters directly and, on PostgreSQL, to every
other process through NOTIFY (delivered by PostgreSQL only if the transaction commits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from threadline.store.engine import create_engine, is_sqlite, plain_postgres_dsn
from threadline.store.migrate import upgrade_to_head
from threadline.store.pg_listen import CHANNEL, PgListener
from threadline.store.signal import EventSignal
from threadline.store.sql import SqlTx

_NOTIFY = sa.text("SELECT pg_notify(:channel, :keys)")


class SqlStore:
    def __init__(self, url: str, pool_size: int = 5):
        self.url = url
        self.engine: AsyncEngine = create_engine(url, pool_size)
        self.signal = EventSignal()
        self._postgres = not is_sqlite(url)
        self._listener = (
            PgListener(plain_postgres_dsn(url), self.signal) if self._postgres else None
        )

    @property
    def supports_many_workers(self) -> bool:
        return self._postgres

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTx]:
        async with self.engine.begin() as conn:
            tx = SqlTx(conn)
            yield tx
            if tx.wakes and self._postgres:
                await conn.execute(_NOTIFY, {"channel": CHANNEL, "keys": " ".join(tx.wakes)})
        self.signal.notify(tx.wakes)

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade_to_head)

    async def open(self) -> None:
        """Bring the schema up to date and start hearing other processes' commits."""
        await self.migrate()
        if self._listener is not None:
            self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        await self.engine.dispose()
