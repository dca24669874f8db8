"""The runs a connected-agent call starts, as the engine carries them: queued like any other
run (any worker may take one), waited for by the calling run's worker, stopped with it."""

from __future__ import annotations

import asyncio
import contextlib

from threadline.domain.errors import ThreadlineError
from threadline.domain.records import PageRequest, Run
from threadline.domain.run_states import RunStatus, cancel_target, is_active
from threadline.service.requests import MessageCreate, ThreadAndRunCreate, ThreadCreate
from threadline.service.run_status import CANCELLABLE, change_status
from threadline.service.runs import RunService
from threadline.store.base import Store
from threadline.tools.base import ToolFailure
from threadline.tools.connected_agent import SubRunEnd

# A sub-run's worker may sit in another process, whose commits wake this one through the
# store's signal (PostgreSQL's notifications); a missed wake-up costs at most this long.
RECHECK_SECONDS = 1.0
NEWEST = PageRequest(limit=1, order="desc")
SETTLED = {RunStatus.REQUIRES_ACTION.value} | {s.value for s in RunStatus if not is_active(s)}


class ServiceSubRuns:
    def __init__(self, store: Store, runs: RunService):
        self.store = store
        self.runs = runs

    async def start(
        self, project: str, assistant_id: str, text: str, parent_run_id: str
    ) -> tuple[str, str]:
        request = ThreadAndRunCreate(
            assistant_id=assistant_id,
            thread=ThreadCreate(messages=[MessageCreate(role="user", content=text)]),
        )
        try:
            run = await self.runs.create_thread_and_run(project, request, parent_run_id)
        except ThreadlineError as refused:
            raise ToolFailure(f"The agent {assistant_id} could not be run: {refused}") from None
        return run["thread_id"], run["id"]

    async def finish(self, run_id: str) -> SubRunEnd:
        run = await self._settled(run_id)
        if run is None:
            return SubRunEnd("The agent's run was deleted before it answered.", failed=True)
        status = run["status"]
        if status == RunStatus.REQUIRES_ACTION.value:
            await self.cancel(run_id)
            return SubRunEnd(
                "The agent asked its client to run function tools, which an agent called by"
                " another agent cannot use; it was stopped.",
                failed=True,
            )
        if status == RunStatus.FAILED.value:
            error = run["last_error"]
            why = error["message"] if error is not None else "no reason given"
            return SubRunEnd(f"The agent's run failed: {why}", failed=True)
        text = await self._answer(run)
        if status == RunStatus.COMPLETED.value:
            return SubRunEnd(text)
        if status == RunStatus.INCOMPLETE.value:
            return SubRunEnd(f"{text}\n[the agent's answer is incomplete]".strip(), failed=True)
        return SubRunEnd(f"The agent's run ended {status} before it answered.", failed=True)

    async def cancel(self, run_id: str) -> None:
        with contextlib.suppress(ThreadlineError):
            async with self.store.transaction() as tx:
                await tx.hold_run(run_id)
                run = await tx.get_run_by_id(run_id)
                if run is not None and run["status"] in CANCELLABLE:
                    await change_status(tx, run, cancel_target(RunStatus(run["status"])))

    async def _settled(self, run_id: str) -> Run | None:
        with self.store.signal.subscribe(run_id) as woken:
            while True:
                woken.clear()
                async with self.store.transaction(durable=False) as tx:
                    run = await tx.get_run_by_id(run_id)
                if run is None or run["status"] in SETTLED:
                    return run
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), RECHECK_SECONDS)

    async def _answer(self, run: Run) -> str:
        async with self.store.transaction(durable=False) as tx:
            page = await tx.page_messages(run["thread_id"], NEWEST, run_id=run["id"])
        if not page.data:
            return ""
        return "\n".join(p["text"] for p in page.data[0]["content"] if p["type"] == "text")
