"""Applies run status changes: the state machine's rules, the timestamps and the event.

Every status change, from the API or the engine, goes through `change_status`. The write
is conditional on the status the caller read, so two processes can never both move a run.
A run that ends cut short (cancelled, expired, failed) settles its open steps and message
in the same place, before its own event: a stream ends at the run's terminal event, so
anything written after it would never reach the client following the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.domain.clock import now
from threadline.domain.records import Obj, PageRequest, Run, RunEvent, RunStep
from threadline.domain.run_states import (
    TERMINAL_STATUSES,
    RunStatus,
    cancel_target,
    transition,
)
from threadline.service.objects import text_part
from threadline.store.base import StoreTx

OPEN_WORK = PageRequest(limit=100, order="desc")
# What a cancel may take further (a run already `cancelling` is on its way).
CANCELLABLE = frozenset(
    s.value for s in (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION)
)
EVENT_BATCH = 500
_MESSAGE_REASONS = {"cancelled": "run_cancelled", "expired": "run_expired", "failed": "run_failed"}


# A run event about to be appended: its name and the record it carries.
Event = tuple[str, Any]


async def emit(tx: StoreTx, run: Run, *events: Event) -> int:
    """Append events, `(name, data)` in order, to the run's log in one statement; returns
    the sequence number of the last."""
    return await tx.append_events(
        run["id"], run["thread_id"], [RunEvent(name, data) for name, data in events]
    )


async def change_status(
    tx: StoreTx,
    run: Run,
    target: RunStatus,
    *,
    lease_owner: str | None = None,
    preceded_by: Sequence[Event] = (),
    **fields: Any,
) -> Run | None:
    """Move `run` to `target`; None if another writer changed it first or, for a worker
    that names itself as `lease_owner`, if its lease on the run has passed to another.
    `preceded_by`: events of the same transaction that come before the run's own, appended
    with it in one statement (before the work a cut-short run closes, if any)."""
    move = transition(RunStatus(run["status"]), target)
    changes: Obj = {**fields, "status": target.value}
    if move.stamp is not None:
        changes[move.stamp] = now()
    if target is not RunStatus.REQUIRES_ACTION:
        changes["pending_tool_calls"] = None
    if target in TERMINAL_STATUSES:
        changes["expires_at"] = None
    # Only these fields are written: what others set meanwhile (the run's metadata) stays.
    updated = await tx.update_run(
        run["id"], changes, expected_status=move.source.value, lease_owner=lease_owner
    )
    if updated is None:
        return None
    if target.value in _MESSAGE_REASONS:
        await emit(tx, updated, *preceded_by)
        preceded_by = ()
        await _close_open_work(tx, updated, target.value)
    await emit(tx, updated, *preceded_by, (move.event, updated))
    return updated


async def _close_open_work(tx: StoreTx, run: Run, status: str) -> None:
    """Its open steps take the run's status; a message cut short becomes `incomplete`,
    holding the text its stream carried so far."""
    for message in (await tx.page_messages(run["thread_id"], OPEN_WORK, run_id=run["id"])).data:
        if message["status"] != "in_progress":
            continue
        text = await _streamed_text(tx, run["id"], message["id"])
        settled = await tx.update_message(
            run["thread_id"],
            message["id"],
            {
                "content": [text_part(text)] if text else [],
                "status": "incomplete",
                "incomplete_at": now(),
                "incomplete_details": {"reason": _MESSAGE_REASONS[status]},
            },
        )
        if settled is not None:
            await emit(tx, run, ("thread.message.incomplete", settled))
    stamp = {"cancelled": "cancelled_at", "expired": "expired_at", "failed": "failed_at"}[status]
    for step in await tx.steps_of_run(run["id"]):
        if step["status"] != "in_progress":
            continue
        await _stop_sub_runs(tx, step)
        changes: Obj = {"status": status, stamp: now()}
        if status == "failed":
            changes["last_error"] = run["last_error"]
        closed = await tx.update_step(run["id"], step["id"], changes)
        if closed is not None:
            await emit(tx, run, (f"thread.run.step.{status}", closed))


async def _stop_sub_runs(tx: StoreTx, step: RunStep) -> None:
    """A connected agent's run, started by a call still waiting for it, stops with the run
    that called it (cancelled, expired or failed), whichever worker carried either."""
    details = step["step_details"]
    if details["type"] != "tool_calls":
        return
    for call in details["tool_calls"]:
        child_id = call.get("run_id")
        if call["type"] != "connected_agent" or call.get("output") is not None or not child_id:
            continue
        await tx.hold_run(str(child_id))
        child = await tx.get_run_by_id(str(child_id))
        if child is not None and child["status"] in CANCELLABLE:
            await change_status(tx, child, cancel_target(RunStatus(child["status"])))


async def _streamed_text(tx: StoreTx, run_id: str, message_id: str) -> str:
    """The text of a message still being written: what its deltas in the run's log carry
    (the message itself receives its text when it completes)."""
    pieces: list[str] = []
    cursor = 0
    while events := await tx.events_after(run_id, cursor, EVENT_BATCH):
        for event in events:
            if event.event == "thread.message.delta" and event.data["id"] == message_id:
                pieces.extend(
                    part["text"] for part in event.data["content"] if part["type"] == "text"
                )
        cursor = events[-1].seq
    return "".join(pieces)
