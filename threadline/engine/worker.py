"""The worker: claims queued runs, carries them concurrently, and keeps its leases alive.

One worker runs inside `threadline serve`; on PostgreSQL any number more can run as
`threadline worker`. A worker holds a lease on each run it carries and renews it while
working; a run whose lease lapses is handed to another worker by the sweeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from threadline.config import Settings
from threadline.domain import clock
from threadline.domain.records import Run
from threadline.domain.run_states import RunStatus
from threadline.engine.executor import RunExecutor
from threadline.engine.ingestion import Ingestion
from threadline.engine.jobs import Handler, JobRunner
from threadline.engine.sweeper import (
    expire_overdue_runs,
    free_lapsed_jobs,
    prune_old_events,
    recover_abandoned_runs,
)
from threadline.engine.tool_round import ToolRounds
from threadline.engine.tools import tool_kinds
from threadline.providers.base import ModelProvider
from threadline.service.run_status import change_status
from threadline.service.vector_stores import INGEST_JOB
from threadline.store.base import Store
from threadline.store.blobs import BlobStore
from threadline.store.signal import RUN_QUEUED
from threadline.tools.code_interpreter.availability import pool_of
from threadline.tools.file_search.search import Searcher

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.5
# Runs claimed per transaction when many wait: a burst of them gets started in a few
# transactions, while another worker still finds its share (claims skip each other's rows).
CLAIM_BATCH = 16


def _job_handlers(
    store: Store, owner: str, blobs: BlobStore | None, searcher: Searcher | None
) -> dict[str, Handler]:
    if blobs is None or searcher is None:
        return {}
    return {INGEST_JOB: Ingestion(store, blobs, searcher.embedder, owner).run}


class Worker:
    def __init__(
        self,
        store: Store,
        provider: ModelProvider,
        settings: Settings,
        blobs: BlobStore | None = None,
        searcher: Searcher | None = None,
    ):
        """Without `blobs` and `searcher` (a worker with no files), no file is ingested
        and runs cannot use file_search; without `blobs`, a message's image files are
        described to the model as text."""
        self.store = store
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        # The code interpreter's sandboxes of this worker (none without a blob store: the
        # files they write become Files).
        self.sandboxes = pool_of(settings) if blobs is not None else None
        self.executor = RunExecutor(
            store,
            provider,
            self.owner,
            settings.run_expiry_seconds,
            settings.delta_interval_ms / 1000,
            max_messages_per_thread=settings.max_messages_per_thread,
            tools=tool_kinds(settings, store, searcher, blobs, self.sandboxes),
            tool_rounds=ToolRounds(
                settings.max_tool_rounds,
                settings.tool_timeout_seconds,
                settings.max_tool_output_chars,
            ),
            blobs=blobs,
        )
        self._wake = asyncio.Event()
        self._claiming = True
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_requested: set[str] = set()
        self._loops: list[asyncio.Task[None]] = []
        self.jobs = JobRunner(
            store,
            self.owner,
            _job_handlers(store, self.owner, blobs, searcher),
            settings.ingest_concurrency,
            settings.lease_seconds,
        )

    def interrupt(self, run_id: str, *, cancel_requested: bool) -> None:
        """Stop carrying a run here: cancelled by a user, or settled by someone else."""
        task = self._tasks.get(run_id)
        if task is None:
            return
        if cancel_requested:
            self._cancel_requested.add(run_id)
        task.cancel()

    async def start(self) -> None:
        if not self.store.supports_many_workers:
            await recover_abandoned_runs(self.store, everything=True)
            await free_lapsed_jobs(self.store, everything=True)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="threadline-claim"),
            asyncio.create_task(self.jobs.claim_loop(), name="threadline-jobs"),
            asyncio.create_task(self._renew_loop(), name="threadline-renew"),
            asyncio.create_task(self._upkeep_loop(), name="threadline-upkeep"),
        ]

    async def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop claiming, let the runs in flight finish for up to `grace_seconds`, then hand
        the rest back to the queue for another worker (or the next start) to resume."""
        self._claiming = False
        self._wake.set()
        self.jobs.stop_claiming()
        if self._tasks and grace_seconds > 0:
            await asyncio.wait(list(self._tasks.values()), timeout=grace_seconds)
        for loop in self._loops:
            loop.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks.values(), return_exceptions=True)
        if self.sandboxes is not None:
            await self.sandboxes.close()
        await self.jobs.cancel()

    async def close(self, grace_seconds: float) -> None:
        await self.stop(grace_seconds)
        await self.executor.provider.close()

    async def _claim_loop(self) -> None:
        with self.store.signal.subscribe(RUN_QUEUED) as queued:
            self._wake = queued
            while self._claiming:
                queued.clear()
                while self._claiming and len(self._tasks) < self.settings.worker_concurrency:
                    room = self.settings.worker_concurrency - len(self._tasks)
                    try:
                        started = await self._claim(min(room, CLAIM_BATCH))
                    except Exception:
                        # A failed claim (the database away for a moment) must not end
                        # claiming for good: try again at the next wake-up or poll.
                        log.exception("claiming a run failed; trying again")
                        break
                    for run in started:
                        task = asyncio.create_task(self._carry(run), name=f"run-{run['id']}")
                        self._tasks[run["id"]] = task
                    if len(started) < min(room, CLAIM_BATCH):
                        break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_SECONDS):
                        await queued.wait()

    async def _claim(self, limit: int) -> list[Run]:
        """Take up to `limit` of the oldest queued runs and start them, in one transaction."""
        started: list[Run] = []
        async with self.store.transaction(durable=False) as tx:
            # Leased from when the claim has its connection: on PostgreSQL it may have waited
            # for one behind the transactions of hundreds of runs, longer than a short lease,
            # and a run leased from before that wait was taken over as soon as it started.
            lease_until = clock.seconds() + self.settings.lease_seconds
            for run in await tx.claim_next_runs(self.owner, lease_until, limit):
                moved = await change_status(tx, run, RunStatus.IN_PROGRESS)
                if moved is None:
                    await tx.release_run(run["id"], self.owner)
                else:
                    started.append(moved)
        return started

    async def _carry(self, run: Run) -> None:
        """Run the executor; a run it returns has settled or waits for outputs, and the
        write that said so gave up the lease. Any other way out gives it up here."""
        run_id = run["id"]
        try:
            await self.executor.execute(run)
        except asyncio.CancelledError:
            if run_id in self._cancel_requested:
                await asyncio.shield(self.executor.finish_cancel(run_id))
            else:
                await asyncio.shield(self._hand_back(run_id))
            await asyncio.shield(self._release(run_id))
            raise
        except Exception:
            log.exception("run %s: the executor failed", run_id)
            await self._release(run_id)
        finally:
            self._cancel_requested.discard(run_id)
            was_full = len(self._tasks) >= self.settings.worker_concurrency
            self._tasks.pop(run_id, None)
            if was_full:
                # Room again for the runs left queued while every slot was taken. (Runs
                # queued meanwhile woke the claim loop themselves; woken after every run,
                # it spent a transaction per run finding nothing.)
                self._wake.set()

    async def _release(self, run_id: str) -> None:
        async with self.store.transaction(durable=False) as tx:
            await tx.release_run(run_id, self.owner)

    async def _hand_back(self, run_id: str) -> None:
        async with self.store.transaction(durable=False) as tx:
            run = await tx.get_run_by_id(run_id)
            if run is not None and run["status"] == RunStatus.IN_PROGRESS.value:
                await change_status(tx, run, RunStatus.QUEUED, lease_owner=self.owner)

    async def _renew_loop(self) -> None:
        """Renew the leases of the runs in flight three times per lease, on a connection of
        their own: behind the sweeps, or queued for a pooled connection behind the very runs
        it protects, a busy worker's renewal came late, its runs were taken over mid-reply,
        and their streams showed a reply begun twice."""
        every = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                # A renewal may take what is left of the lease: cut off after a third of it,
                # one slow renewal on a loaded machine lost every lease it was renewing.
                async with (
                    asyncio.timeout(self.settings.lease_seconds - every),
                    self.store.transaction(durable=False, reserved=True) as tx,
                ):
                    until = clock.seconds() + self.settings.lease_seconds
                    await tx.renew_leases(self.owner, list(self._tasks), until)
                    await tx.renew_job_leases(self.owner, self.jobs.held, until)
            except Exception:
                log.exception("renewing leases failed; trying again")

    async def _upkeep_loop(self) -> None:
        """Cancel requests, expiry and recovery, on one timer."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            try:
                await self._upkeep()
            except Exception:
                log.exception("worker upkeep failed; trying again")

    async def _upkeep(self) -> None:
        async with self.store.transaction(durable=False) as tx:
            cancelling = await tx.runs_in_status(list(self._tasks), RunStatus.CANCELLING.value)
        for run_id in cancelling:
            self.interrupt(run_id, cancel_requested=True)
        for run_id in await expire_overdue_runs(self.store):
            self.interrupt(run_id, cancel_requested=False)
        if self.store.supports_many_workers:
            await recover_abandoned_runs(self.store)
            await free_lapsed_jobs(self.store)
        await prune_old_events(self.store, self.settings.event_retention_seconds)
