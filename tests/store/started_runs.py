"""What store tests about a run in progress begin with: a run queued on a new thread, then
claimed and started by a worker."""

from __future__ import annotations

from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import Obj
from threadline.domain.run_states import RunStatus
from threadline.service.run_status import change_status
from threadline.store.sql_store import SqlStore

PROJECT = "default"


async def queue_a_run(store: SqlStore) -> None:
    thread = {"id": new_id(IdKind.THREAD), "metadata": {}}
    queued = {
        "id": new_id(IdKind.RUN),
        "thread_id": thread["id"],
        "assistant_id": new_id(IdKind.ASSISTANT),
        "status": "queued",
        "expires_at": None,
    }
    async with store.transaction() as tx:
        await tx.insert_thread(PROJECT, thread)
        await tx.insert_run(PROJECT, queued)


async def claim_and_start(store: SqlStore, owner: str, lease_until: float) -> Obj:
    """Claim the oldest queued run for `owner`, leased until `lease_until` (epoch seconds),
    and start it."""
    async with store.transaction() as tx:
        (claimed,) = await tx.claim_next_runs(owner, lease_until, 1)
        started = await change_status(tx, claimed, RunStatus.IN_PROGRESS)
    assert started is not None
    return started
