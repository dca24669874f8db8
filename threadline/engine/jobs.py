"""Background jobs (a file's ingestion), claimed from the queue as runs are.

The worker that carries runs carries jobs too, in a loop of its own beside the runs' claim
loop: the same oldest-first claim with a lease (skipping rows another worker is claiming),
the same renewal loop (`Worker._renew_loop` renews both), the same sweep of lapsed leases.
Jobs get their own concurrency, since ingestion is CPU work that would otherwise starve the
runs' streams of the cores they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from threadline.domain import clock
from threadline.domain.records import Job
from threadline.store.base import Store
from threadline.store.signal import JOB_QUEUED

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
Handler = Callable[[Job], Awaitable[None]]


class JobRunner:
    def __init__(
        self,
        store: Store,
        owner: str,
        handlers: dict[str, Handler],
        concurrency: int,
        lease_seconds: float,
    ):
        self.store = store
        self.owner = owner
        self.handlers = handlers
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._claiming = True
        self._wake = asyncio.Event()

    @property
    def held(self) -> list[str]:
        return list(self._tasks)

    def stop_claiming(self) -> None:
        self._claiming = False
        self._wake.set()

    async def cancel(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def claim_loop(self) -> None:
        with self.store.signal.subscribe(JOB_QUEUED) as queued:
            self._wake = queued
            while self._claiming:
                queued.clear()
                room = self.concurrency - len(self._tasks)
                if room > 0:
                    try:
                        await self._claim(room)
                    except Exception:
                        log.exception("claiming a job failed; trying again")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_SECONDS):
                        await queued.wait()

    async def _claim(self, room: int) -> None:
        async with self.store.transaction(durable=False) as tx:
            claimed = await tx.claim_next_jobs(
                self.owner, clock.seconds() + self.lease_seconds, room
            )
        for job in claimed:
            self._tasks[job["id"]] = asyncio.create_task(self._carry(job), name=f"job-{job['id']}")

    async def _carry(self, job: Job) -> None:
        try:
            handler = self.handlers.get(job["kind"])
            if handler is None:
                log.error("job %s: no handler for its kind %r", job["id"], job["kind"])
                return
            await handler(job)
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(job["id"]))
            raise
        except Exception:
            log.exception("job %s failed; it is handed back to the queue", job["id"])
            await self._hand_back(job["id"])
        finally:
            self._tasks.pop(job["id"], None)
            self._wake.set()

    async def _hand_back(self, job_id: str) -> None:
        async with self.store.transaction(durable=False) as tx:
            await tx.hand_back_job(job_id, self.owner)
