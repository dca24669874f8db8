"""The sweeper on the one clock: a run expires and a lease lapses when the clock says so,
seen without waiting for either (the clock is set, not slept through)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from tests.store.started_runs import claim_and_start, queue_a_run
from threadline.domain.clock import use_clock
from threadline.engine.sweeper import expire_overdue_runs, recover_abandoned_runs
from threadline.store.sql_store import SqlStore

NOW = 1_800_000_000.0
T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


def test_a_run_expires_when_the_clock_passes_its_expiry(store: SqlStore, run: Runner) -> None:
    async def scenario() -> tuple[list[str], list[str], str]:
        await queue_a_run(store)
        with use_clock(lambda: NOW):
            started = await claim_and_start(store, "worker", NOW + 30)
            async with store.transaction() as tx:
                await tx.update_run(started["id"], {"expires_at": int(NOW) + 600})
            early = await expire_overdue_runs(store)
        with use_clock(lambda: NOW + 600):
            due = await expire_overdue_runs(store)
        async with store.transaction() as tx:
            stored = await tx.get_run_by_id(started["id"])
        assert stored is not None
        return early, due, stored["status"]

    early, due, status = run(scenario())

    assert early == [] and len(due) == 1 and status == "expired"


def test_a_lease_lapses_when_the_clock_passes_it(store: SqlStore, run: Runner) -> None:
    async def scenario() -> tuple[int, int, str]:
        await queue_a_run(store)
        with use_clock(lambda: NOW):
            started = await claim_and_start(store, "gone-worker", NOW + 30)
            held = await recover_abandoned_runs(store)
        with use_clock(lambda: NOW + 31):
            lapsed = await recover_abandoned_runs(store)
        async with store.transaction() as tx:
            stored = await tx.get_run_by_id(started["id"])
        assert stored is not None
        return held, lapsed, stored["status"]

    held, lapsed, status = run(scenario())

    assert (held, lapsed, status) == (0, 1, "queued")
