"""Following a run's event log on the real store, on every backend: a follower reads the log
once per commit it is woken for, and misses nothing committed while its consumer was busy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.store.conftest import Runner
from tests.store.started_runs import claim_and_start, queue_a_run
from threadline.domain.records import Obj
from threadline.domain.run_states import RunStatus
from threadline.service.run_events import follow_run
from threadline.service.run_status import change_status, emit
from threadline.store.sql import SqlTx
from threadline.store.sql_store import SqlStore

OWNER = "worker-a"
DONE = "thread.run.completed"


class CountingStore:
    """The store, counting the transactions opened through it."""

    def __init__(self, store: SqlStore):
        self.store = store
        self.signal = store.signal
        self.transactions = 0

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[SqlTx]:
        self.transactions += 1
        async with self.store.transaction(durable=durable) as tx:
            yield tx


async def _started_run(store: SqlStore) -> Obj:
    await queue_a_run(store)
    return await claim_and_start(store, OWNER, 1e12)


async def _delta(store: SqlStore, run: Obj, text: str) -> None:
    delta = {"id": "msg_1", "object": "thread.message.delta", "delta": {"text": text}}
    async with store.transaction(durable=False) as tx:
        await emit(tx, run, ("thread.message.delta", delta))


async def _complete(store: SqlStore, run: Obj) -> None:
    async with store.transaction(durable=False) as tx:
        assert await change_status(tx, run, RunStatus.COMPLETED, lease_owner=OWNER) is not None


def _names(batches: list[list[Any]]) -> list[str]:
    return [event.event for batch in batches for event in batch]


def test_a_follower_reads_the_log_once_per_commit_it_is_woken_for(
    store: SqlStore, run: Runner
) -> None:
    """The consumer asks for more at once, as a stream does; each delta is then committed
    while the follower waits, and costs it one read, not a read that finds nothing first."""

    async def scenario() -> tuple[list[list[Any]], int]:
        started = await _started_run(store)
        counting = CountingStore(store)
        batches: list[list[Any]] = []
        events = follow_run(counting, started["id"], 0)  # type: ignore[arg-type]
        async with asyncio.timeout(30):
            batches.append(await anext(events))
            for text in ("one", "two", "three"):
                more = asyncio.ensure_future(anext(events))
                await asyncio.sleep(0.05)  # the follower goes on from its last batch
                await _delta(store, started, text)
                batches.append(await more)
            await _complete(store, started)
            batches.extend([batch async for batch in events])
        return batches, counting.transactions

    batches, reads = run(scenario())

    assert _names(batches) == ["thread.run.in_progress", *["thread.message.delta"] * 3, DONE]
    assert reads == 1 + 3 + 1


def test_what_is_committed_while_the_consumer_is_busy_comes_without_another_commit(
    store: SqlStore, run: Runner
) -> None:
    async def scenario() -> list[str]:
        started = await _started_run(store)
        batches: list[list[Any]] = []
        events = follow_run(store, started["id"], 0)
        async with asyncio.timeout(30):
            batches.append(await anext(events))
            # The consumer, busy with the first batch, writes before it asks for more.
            await _delta(store, started, "while busy")
            await _complete(store, started)
            batches.extend([batch async for batch in events])
        return _names(batches)

    names = run(scenario())

    assert names == ["thread.run.in_progress", "thread.message.delta", DONE]
