"""The connected-agent tool: the model hands a task to another agent of the same project.

The service runs that agent on a fresh thread of its own, as a sub-run of the calling run,
with the agent's own model, instructions and tools, and gives its final answer back as the
call's result. The sub-run is recorded in the call (its run, thread and agent ids) as soon
as it exists, so a worker that takes the calling run over waits for the same sub-run rather
than start another. Chains of agents calling agents stop at `max_depth`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Protocol

from threadline.domain.records import Obj, Tool
from threadline.tools.base import CallContext, Offer, Outcome, ToolFailure

QUERY = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "The task or question for the agent."}
    },
    "required": ["query"],
}


@dataclass(frozen=True)
class SubRunEnd:
    """How a sub-run ended: its answer, or why it has none."""

    text: str
    failed: bool = False


class SubRuns(Protocol):
    """What the service does for the tool: start an agent's run, wait for it, stop it."""

    async def start(
        self, project: str, assistant_id: str, text: str, parent_run_id: str
    ) -> tuple[str, str]:
        """A new thread holding `text`, and a run of the agent on it: (thread id, run id).
        Raises `ToolFailure` when the agent cannot be run (it was deleted, say)."""
        ...

    async def finish(self, run_id: str) -> SubRunEnd: ...

    async def cancel(self, run_id: str) -> None: ...


class ConnectedAgentTool:
    type = "connected_agent"

    def __init__(self, definition: Tool, sub_runs: SubRuns, max_depth: int = 3):
        details = definition["connected_agent"]
        self.agent_id: str = details["id"]
        self.name: str = details["name"]
        self.description: str = details["description"]
        self.sub_runs = sub_runs
        self.max_depth = max_depth

    async def load(self) -> None:
        """Everything it offers is in its definition."""

    def needs_approval(self, name: str) -> bool:
        return False

    def activity(self) -> Obj | None:
        return None

    def offers(self) -> list[Offer]:
        return [Offer(self.name, self.description, QUERY)]

    async def call(self, offer: Offer, arguments: str, context: CallContext) -> Outcome:
        recorded = context.recorded
        if "run_id" in recorded:
            run_id = str(recorded["run_id"])
            details = _details(self.agent_id, str(recorded["thread_id"]), run_id)
        else:
            if context.depth + 1 > self.max_depth:
                raise ToolFailure(
                    f"The agent '{self.name}' was not called: agents calling agents stop at"
                    f" {self.max_depth} levels."
                )
            thread_id, run_id = await self.sub_runs.start(
                context.project, self.agent_id, _query(arguments), context.run_id
            )
            details = _details(self.agent_id, thread_id, run_id)
            if context.record is not None:
                await context.record(details)
        try:
            end = await self.sub_runs.finish(run_id)
        except asyncio.CancelledError:
            # The calling run stopped (cancelled, or its worker stopping): its sub-run stops
            # with it, whatever else is being cancelled meanwhile.
            await asyncio.shield(self.sub_runs.cancel(run_id))
            raise
        return Outcome(end.text, details, failed=end.failed)


def _details(assistant_id: str, thread_id: str, run_id: str) -> Obj:
    return {"assistant_id": assistant_id, "thread_id": thread_id, "run_id": run_id}


def _query(arguments: str) -> str:
    """The task the model wrote: the `query` argument, or the arguments whole when the
    model wrote something else (the agent can still read it)."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("query"), str):
        return str(parsed["query"])
    return arguments
