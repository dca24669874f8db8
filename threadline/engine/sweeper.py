"""Settles runs nobody is carrying: past their expiry, or held by a worker that went away."""

from __future__ import annotations

import math

from threadline.domain import clock
from threadline.domain.clock import now
from threadline.domain.run_states import RunStatus
from threadline.service.run_status import change_status
from threadline.store.base import Store

BATCH = 100
PRUNE_BATCH = 5000


async def expire_overdue_runs(store: Store) -> list[str]:
    """Expire active runs past `expires_at`; returns their ids."""
    async with store.transaction(durable=False) as tx:
        expired: list[str] = []
        for run in await tx.runs_past_expiry(now(), BATCH):
            if await change_status(tx, run, RunStatus.EXPIRED) is not None:
                expired.append(run["id"])
        return expired


async def recover_abandoned_runs(store: Store, *, everything: bool = False) -> int:
    """Hand runs whose worker's lease lapsed back to the queue, so another worker resumes them.

    `everything` treats every lease as lapsed: right for a SQLite file at start, where the
    embedded worker is the only one there can be.
    """
    deadline = math.inf if everything else clock.seconds()
    recovered = 0
    while True:
        async with store.transaction(durable=False) as tx:
            runs = await tx.runs_with_lapsed_lease(deadline, BATCH)
            for run in runs:
                status = RunStatus(run["status"])
                if status is RunStatus.IN_PROGRESS:
                    await change_status(tx, run, RunStatus.QUEUED)
                elif status is RunStatus.CANCELLING:
                    await change_status(tx, run, RunStatus.CANCELLED)
        recovered += len(runs)
        if len(runs) < BATCH:
            return recovered


async def free_lapsed_jobs(store: Store, *, everything: bool = False) -> int:
    """Hand jobs whose worker's lease lapsed back to the queue (`everything`: as at the
    start of the one worker a SQLite file can have)."""
    async with store.transaction(durable=False) as tx:
        return await tx.free_lapsed_jobs(None if everything else clock.seconds())


async def prune_old_events(store: Store, retention_seconds: float) -> int:
    """Drop settled runs' events older than the retention period: runs, steps and messages
    stay; only the replayable stream of a long-settled run goes."""
    async with store.transaction(durable=False) as tx:
        return await tx.prune_events(clock.seconds() - retention_seconds, PRUNE_BATCH)
