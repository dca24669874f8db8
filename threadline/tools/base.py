"""What every tool is to a run.

A tool is described to the model as one or more functions (`Offer`): the model only ever
calls functions, whatever the tool behind them. A function tool is run by the client: the
run stops at `requires_action` until its outputs come back. Every other tool is run by the
service (`ServiceTool`): the worker calls it, records what came back in the run's step, and
hands it to the model in the same run.

A service tool's failure (a timeout, an HTTP error, a refused call) is an answer like any
other: the model reads what went wrong and carries on. It never fails the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from threadline.domain.records import Obj


@dataclass(frozen=True)
class Offer:
    """A function the model is offered, as Chat Completions describes one."""

    name: str
    description: str | None = None
    parameters: Obj = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    # What a call of it records besides the call itself (an MCP server's label).
    labels: Obj = field(default_factory=dict)
    # The argument whose text a call's record shows as its `input`, streamed as the model
    # writes it (the code interpreter's code).
    input_field: str | None = None

    def chat_tool(self) -> Obj:
        function: Obj = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = self.parameters
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class Outcome:
    """What a service tool's call came to: `output` is what the model reads; `details` go
    into the call's record in the run step (the fields its wire formats show, by tool);
    `failed` when the call did not do what was asked (the model is told why, in `output`)."""

    output: str
    details: Obj = field(default_factory=dict)
    failed: bool = False


class ToolFailure(Exception):
    """A call that could not be carried out; its message is what the model is told."""


@dataclass(frozen=True)
class CallContext:
    """Where a call is made from: the run and what it may reach."""

    project: str
    run_id: str
    thread_id: str
    # How deep this run sits in a chain of connected agents (0: a run a client started).
    depth: int = 0
    # The call's fields as stored so far: a call taken up again after its worker stopped
    # finds there what it had recorded (the sub-run a connected agent started).
    recorded: Obj = field(default_factory=dict)
    # Records fields of the call durably, before the call goes on (None outside a run).
    record: Callable[[Obj], Awaitable[None]] | None = None
    # What the run asked its steps to show besides their own fields (`include[]`).
    include: tuple[str, ...] = ()


class ServiceTool(Protocol):
    """A tool the service runs itself: one definition of a run's `tools`."""

    @property
    def type(self) -> str:
        """The tool's type, as the run's tools and its step's tool calls name it."""
        ...

    async def load(self) -> None:
        """Learn what the tool offers, where that takes a request (an MCP server's list of
        tools); raises `ToolFailure` when it cannot."""
        ...

    def offers(self) -> list[Offer]:
        """The functions the model may call for this tool."""
        ...

    def needs_approval(self, name: str) -> bool:
        """Whether a call of the function `name` waits for its client's approval."""
        ...

    def activity(self) -> Obj | None:
        """What loading it did that a run's steps show (an MCP server's list of tools, as an
        `mcp_list_tools` activity), if anything."""
        ...

    async def call(self, offer: Offer, arguments: str, context: CallContext) -> Outcome:
        """Carry out one call of one of `offers()`; raises `ToolFailure` for an answer that
        is a failure the model should read."""
        ...
