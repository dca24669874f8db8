"""Leases and the connection pool (PostgreSQL): renewals run on a connection kept for them,
never queued for the pool behind the runs whose leases they keep, and a claim's lease runs
from when it has its connection. (SQLite has one connection, on which no transaction waits
for another.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from started_runs import queue_a_run

from threadline.config import Settings
from threadline.engine.worker import Worker
from threadline.providers.openai_compat import OpenAICompatibleProvider
from threadline.store.sql_store import SqlStore

T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


@asynccontextmanager
async def every_pooled_connection_held(store: SqlStore) -> AsyncIterator[None]:
    """Hold both connections of a store with pool size 1 (one pooled, one overflow) until
    the block ends."""
    holding: list[int] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with store.transaction() as tx:
            await tx.get_run_by_id("run_none")
            holding.append(1)
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    try:
        async with asyncio.timeout(30):
            while len(holding) < 2:
                await asyncio.sleep(0.01)
        yield
    finally:
        release.set()
        await asyncio.gather(*holders)


def test_a_reserved_transaction_goes_through_while_every_pooled_connection_is_taken(
    postgres_url: str, run: Runner
) -> None:
    store = SqlStore(postgres_url, pool_size=1)

    async def scenario() -> None:
        async with (
            every_pooled_connection_held(store),
            asyncio.timeout(10),  # the pool would make it wait 60 s
            store.transaction(durable=False, reserved=True) as tx,
        ):
            await tx.renew_leases("worker-a", ["run_none"], 1.0)

    try:
        run(store.migrate())
        run(scenario())
    finally:
        run(store.close())


def test_a_claim_that_waited_for_a_connection_leases_from_when_it_got_one(
    empty_postgres_url: str, run: Runner
) -> None:
    store = SqlStore(empty_postgres_url, pool_size=1)
    provider = OpenAICompatibleProvider("http://127.0.0.1:9/v1", None)  # never called
    settings = Settings(database_url=empty_postgres_url, lease_seconds=1.0)
    worker = Worker(store, provider, settings)

    async def scenario() -> tuple[float, float]:
        await queue_a_run(store)
        async with every_pooled_connection_held(store):
            claiming = asyncio.create_task(worker._claim(1))
            await asyncio.sleep(1.5)  # longer than the lease
            assert not claiming.done()
            released_at = time.time()
        (started,) = await claiming
        async with store.transaction() as tx:
            [(lease_until,)] = await tx.db.execute_sql(
                f"SELECT lease_until FROM runs WHERE id = '{started['id']}'"
            )
        return released_at, float(lease_until)

    try:
        released_at, lease_until = run(scenario())
    finally:
        run(provider.close())
        run(store.close())
    assert lease_until >= released_at + 1.0
