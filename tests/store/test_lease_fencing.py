"""A worker whose lease lapsed, and whose run another worker took over, writes nothing more.

Leases lapse when a worker stalls (an overloaded event loop, a long pause) without dying: it
then goes on with a turn the other worker is doing again, and must not write over it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import pytest

from threadline.domain.ids import IdKind, new_id
from threadline.domain.run_states import RunStatus
from threadline.engine.recorder import TurnRecorder
from threadline.engine.superseded import Superseded
from threadline.service.run_status import change_status
from threadline.store.base import Obj
from threadline.store.sql_store import SqlStore

PROJECT = "default"
T = TypeVar("T")


class Runner(Protocol):
    """The `run` fixture: drives a coroutine to completion on the test's event loop."""

    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


async def _claimed_run(store: SqlStore) -> Obj:
    thread = {"id": new_id(IdKind.THREAD), "object": "thread", "metadata": {}}
    queued: dict[str, Any] = {
        "id": new_id(IdKind.RUN),
        "object": "thread.run",
        "thread_id": thread["id"],
        "assistant_id": new_id(IdKind.ASSISTANT),
        "status": "queued",
        "expires_at": None,
    }
    async with store.transaction() as tx:
        await tx.insert_thread(PROJECT, thread)
        await tx.insert_run(PROJECT, queued)
    return await _take(store, "worker-a")


async def _take(store: SqlStore, owner: str) -> Obj:
    async with store.transaction() as tx:
        run = await tx.claim_next_run(owner, 100.0)
        assert run is not None
        started = await change_status(tx, run, RunStatus.IN_PROGRESS)
    assert started is not None
    return started


async def _taken_over(store: SqlStore) -> Obj:
    """The sweeper finds worker-a's lease lapsed and hands the run back; worker-b claims it."""
    async with store.transaction() as tx:
        (lapsed,) = await tx.runs_with_lapsed_lease(1_000.0, 10)
        await change_status(tx, lapsed, RunStatus.QUEUED)
    return await _take(store, "worker-b")


def test_a_worker_that_lost_its_lease_writes_nothing_more(store: SqlStore, run: Runner) -> None:
    ours = run(_claimed_run(store))
    stale = TurnRecorder(store, ours, "worker-a")
    run(stale.add_text("Hel"))
    theirs = run(_taken_over(store))

    with pytest.raises(Superseded):
        run(stale.add_text("lo"))

    async def settle_as(owner: str, current: Obj) -> Obj | None:
        async with store.transaction() as tx:
            return await change_status(tx, current, RunStatus.COMPLETED, lease_owner=owner)

    assert run(settle_as("worker-a", theirs)) is None
    assert run(settle_as("worker-b", theirs)) is not None

    async def deltas() -> list[str]:
        async with store.transaction() as tx:
            events = await tx.events_after(ours["id"], 0, 100)
        return [
            e.data["delta"]["content"][0]["text"]["value"]
            for e in events
            if e.event == "thread.message.delta"
        ]

    assert run(deltas()) == ["Hel"]
