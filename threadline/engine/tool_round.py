"""A round of service-side tool calls: run them, record each outcome once, durably.

The round's step holds every call the model made, written durably before any tool runs. Each
service-side call then runs (in parallel with the others, each within the time limit), and
its outcome is written into the step, with a delta that shows it to a client following the
run, as soon as it is known. A worker that dies mid-round leaves a step whose finished calls
have their outputs: whoever takes the run over runs only the calls without one (so a call
that was under way when the worker died runs again: service-side tools are at least once).

A round that closes with its last outcome does not write that outcome itself: it hands the
write (the outcome, and the step completed) to the run's next turn, whose first transaction
makes it before anything else (`Closing`). The outcome is still written once and committed
before the model is called again, and a turn whose transaction does not commit writes it
alone before the run stops; a worker that dies before it is written leaves the call to be
made again, as one that died a moment before the call's answer came would.

A tool's failure is an outcome like any other: the model reads what went wrong.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import cast

from threadline.domain.clock import now
from threadline.domain.records import Obj, Run, RunStep, ToolCall, ToolCalls
from threadline.engine.superseded import Superseded
from threadline.service.items import service_call_items
from threadline.service.run_status import Event, emit
from threadline.store.base import Store, StoreTx
from threadline.tools.base import CallContext, Outcome, ToolFailure
from threadline.tools.toolset import Toolset

log = logging.getLogger(__name__)

INTERNAL_FAILURE = "The tool failed because of an error inside the service."
# What a call's deltas carried while the model wrote it, never sent again.
_STREAMED = frozenset({"id", "name", "arguments", "input"})

# The write that closes a round, made in a transaction of the caller's: the step as written.
Closing = Callable[[StoreTx], Awaitable[RunStep]]


@dataclass(frozen=True)
class ToolRounds:
    """How far a run's tool calls may go: rounds of calls per run, seconds per call, and
    characters of one call's answer that the model reads."""

    max_rounds: int = 20
    time_limit_seconds: float = 60.0
    max_output_chars: int = 262_144


def waiting_calls(step: RunStep, toolset: Toolset) -> list[int]:
    """Indexes of the step's service-side calls that have no outcome yet."""
    calls = cast(ToolCalls, step["step_details"])["tool_calls"]
    return [
        index
        for index, call in enumerate(calls)
        if call.get("output") is None and not toolset.is_client_side(call)
    ]


CAPPED = "Not made: the response's max_tool_calls have all been made."


class ToolRound:
    def __init__(self, store: Store, owner: str, time_limit: float, max_output_chars: int) -> None:
        self.store = store
        self.owner = owner
        self.time_limit = time_limit
        self.max_output_chars = max_output_chars

    async def run(
        self,
        run: Run,
        step: RunStep,
        toolset: Toolset,
        context: CallContext,
        *,
        close_step: bool = False,
        allowed: int | None = None,
    ) -> tuple[RunStep, Closing | None]:
        """Carry out the step's waiting service-side calls; the step as it then is. With
        `close_step`, the last outcome is not written here: the write of it, which also
        completes the step, is returned for the caller to make in its next transaction (one
        transaction fewer a round). `allowed`: how many of the waiting calls may be made (a
        response's `max_tool_calls`); the rest are answered as not made."""
        details = cast(ToolCalls, step["step_details"])
        calls: list[ToolCall] = [dict(call) for call in details["tool_calls"]]  # type: ignore[misc]
        recorded = asyncio.Lock()
        waiting = waiting_calls(step, toolset)
        capped = set(waiting[allowed:]) if allowed is not None else set()
        left = len(waiting)
        closing: Closing | None = None
        if close_step and not waiting:  # every outcome in already: the step is only closed
            closing = functools.partial(self._write, run, step, calls, None, {}, close=True)

        async def carry(index: int) -> None:
            async def record(fields: Obj) -> None:
                async with recorded:
                    calls[index] = cast(ToolCall, {**calls[index], **fields})
                    await self._record(run, step, calls, index, fields)

            call = calls[index]
            own = replace(context, recorded=dict(call), record=record)
            outcome = (
                Outcome(CAPPED, failed=True)
                if index in capped
                else await self._outcome(toolset, call, own)
            )
            nonlocal left, closing
            async with recorded:  # one writer of the step at a time, each with all so far
                learned: Obj = {**outcome.details, "output": self._cut(outcome.output)}
                if outcome.failed:  # shown where a format says so (a Responses `mcp_call`)
                    learned["failed"] = True
                calls[index] = cast(ToolCall, {**calls[index], **learned})
                left -= 1
                if close_step and left == 0:
                    closing = functools.partial(
                        self._write, run, step, calls, index, learned, close=True
                    )
                else:
                    await self._record(run, step, calls, index, learned)

        await asyncio.gather(*(carry(index) for index in waiting))
        return {**step, "step_details": {"type": "tool_calls", "tool_calls": calls}}, closing

    async def _outcome(self, toolset: Toolset, call: ToolCall, context: CallContext) -> Outcome:
        if call.get("approved") is False:
            return Outcome("The user did not approve this call; it was not made.", failed=True)
        found = toolset.service.get(call["name"])
        if found is None:
            available = ", ".join(sorted([*toolset.functions, *toolset.service])) or "none"
            return Outcome(
                f"No tool named '{call['name']}' is available. Tools: {available}.",
                failed=True,
            )
        try:
            async with asyncio.timeout(self.time_limit):
                return await found.tool.call(found.offer, call["arguments"], context)
        except TimeoutError:
            return Outcome(
                f"The tool did not answer within {self.time_limit:g} seconds.", failed=True
            )
        except ToolFailure as failure:
            return Outcome(str(failure), failed=True)
        except Exception:
            log.exception("run %s: tool call %s failed", context.run_id, call["id"])
            return Outcome(INTERNAL_FAILURE, failed=True)

    def _cut(self, output: str) -> str:
        if len(output) <= self.max_output_chars:
            return output
        return (
            output[: self.max_output_chars]
            + f"\n[cut: the tool's answer was {len(output):,} characters; the first"
            f" {self.max_output_chars:,} are shown]"
        )

    async def _record(
        self, run: Run, step: RunStep, calls: list[ToolCall], index: int, learned: Obj
    ) -> None:
        # As durable as the engine's own progress (it survives a killed worker): lost to a
        # power cut, the call is made again, as any call under way then would be.
        async with self.store.transaction(durable=False) as tx:
            await self._write(run, step, calls, index, learned, tx)

    async def _write(
        self,
        run: Run,
        step: RunStep,
        calls: list[ToolCall],
        index: int | None,
        learned: Obj,
        tx: StoreTx,
        *,
        close: bool = False,
    ) -> RunStep:
        """Write the step with every call as it now is, and a delta with what was learned
        of call `index`: only that, since a client adds a delta's strings to what it holds
        (the call's id, name and arguments streamed while the model wrote them)."""
        if not await tx.holds_lease(run["id"], self.owner):
            raise Superseded()
        details: ToolCalls = {"type": "tool_calls", "tool_calls": calls}
        changes: Obj = {"step_details": details}
        if close:
            changes.update(status="completed", completed_at=now())
        written = await tx.update_step(run["id"], step["id"], changes)
        if written is None:
            raise Superseded()
        events: list[Event] = []
        if index is not None:
            news = {k: v for k, v in learned.items() if k not in _STREAMED}
            piece: Obj = {"index": index, "type": calls[index]["type"], **news}
            events.append(("thread.run.step.delta", {"id": step["id"], "tool_calls": [piece]}))
        if close:
            events.append(("thread.run.step.completed", written))
            # The round's calls, done, join the thread's items (`service/items.py`).
            await tx.insert_messages(
                run["thread_id"], service_call_items(run["thread_id"], run["id"], calls)
            )
        await emit(tx, run, *events)
        return written
