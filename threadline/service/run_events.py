"""Following a run: its event log from a sequence number on, as the worker commits it.

A follower never talks to the worker: it reads what the worker committed, so it can be
served by any process, resumed from any sequence number, and never disagrees with polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from threadline.domain.records import RunEvent
from threadline.store.base import Store

ENDING_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
    }
)
PAUSED_OR_DONE = frozenset(event.removeprefix("thread.run.") for event in ENDING_EVENTS)
BATCH = 500


# A run's events in the batches they are read in; an empty batch means "nothing for a while".
EventBatches = AsyncIterator[list[RunEvent]]


class RunVanished(Exception):
    """The run was deleted (with its thread) while it was being followed."""


async def follow_run(
    store: Store, run_id: str, after_seq: int, idle_seconds: float = 15.0
) -> EventBatches:
    """Yield the run's events after `after_seq`, in the batches they are read in, until the
    run settles or waits for tool outputs; yields an empty batch after `idle_seconds` without
    events, so a stream can keep alive. A batch goes out to a client in one write."""
    cursor = after_seq
    with store.signal.subscribe(run_id) as woken:
        while True:
            woken.clear()
            async with store.transaction(durable=False) as tx:  # reads only
                events = await tx.events_after(run_id, cursor, BATCH)
                if not events:
                    run = await tx.get_run_by_id(run_id)
                    if run is None:
                        raise RunVanished(run_id)
                    if run["status"] in PAUSED_OR_DONE:
                        # The status commits with the event announcing it, so a read after
                        # seeing the status holds every event the run has for now.
                        events = await tx.events_after(run_id, cursor, BATCH)
                        if not events:
                            return
            for end, event in enumerate(events, 1):
                if event.event in ENDING_EVENTS:
                    yield events[:end]
                    return
            if events:
                cursor = events[-1].seq
                yield events
                if woken.is_set():
                    continue  # committed since the read began: read on at once
            # Nothing was committed for the run since the read began (a commit then would
            # have woken us), so the next events come with the next wake-up: reading again
            # first cost every delta a transaction more.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), idle_seconds)
            if not woken.is_set():
                yield []
