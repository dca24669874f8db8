"""Lease renewal's transactions run on a connection kept for them (PostgreSQL): they never
queue for the pool behind the runs whose leases they keep. (SQLite has one connection, on
which no transaction waits for another.)"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from threadline.store.sql_store import SqlStore

T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


def test_a_reserved_transaction_goes_through_while_every_pooled_connection_is_taken(
    postgres_url: str, run: Runner
) -> None:
    store = SqlStore(postgres_url, pool_size=1)  # one pooled connection and one overflow

    async def scenario() -> None:
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
            async with asyncio.timeout(10):  # the pool would make it wait 60 s
                async with store.transaction(durable=False, reserved=True) as tx:
                    await tx.renew_leases("worker-a", ["run_none"], 1.0)
        finally:
            release.set()
            await asyncio.gather(*holders)

    try:
        run(store.migrate())
        run(scenario())
    finally:
        run(store.close())
