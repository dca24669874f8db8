"""The tools of one run, as its model is offered them and as its calls are sorted.

A function tool is offered as itself and run by the client. Every other tool is built by
its kind (`ToolKinds`) into a `ServiceTool`, which offers one function or several (an
OpenAPI spec's operations, an MCP server's tools); a call of one of those is run here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from threadline.domain.records import Obj, Tool, ToolCall
from threadline.tools.base import Offer, ServiceTool, ToolFailure
from threadline.tools.input_stream import field_of

log = logging.getLogger(__name__)

# Builds the service tool one of a run's tool definitions describes, given the run's tool
# resources (an MCP server's headers and approval rule).
ToolBuilder = Callable[[Tool, Obj], ServiceTool]


@dataclass(frozen=True)
class ServiceOffer:
    tool: ServiceTool
    offer: Offer


class ToolKinds:
    """The service tools this worker can run, by type."""

    def __init__(self, builders: dict[str, ToolBuilder] | None = None):
        self.builders = dict(builders or {})

    def build(self, tool: Tool, resources: Obj) -> ServiceTool:
        builder = self.builders.get(tool["type"])
        if builder is None:
            # Refused when the run or assistant was made (`service/unsupported.py`).
            raise ValueError(f"no tool kind {tool['type']!r} on this worker")
        return builder(tool, resources)


class Toolset:
    def __init__(self, functions: Sequence[Tool], service: dict[str, ServiceOffer]):
        """`functions`: the run's function tools, as it holds them."""
        self.functions = {tool["name"]: tool for tool in functions}
        self.service = service

    @classmethod
    async def of(cls, tools: Sequence[Tool], kinds: ToolKinds, resources: Obj) -> Toolset:
        """The run's tools, each asked what it offers. A tool that cannot say (an MCP server
        that does not answer) offers nothing this time: the model answers without it, and
        the service's log says why."""
        functions: list[Tool] = []
        service: dict[str, ServiceOffer] = {}
        for tool in tools:
            if tool["type"] == "function":
                functions.append(tool)
                continue
            built = kinds.build(tool, resources)
            try:
                await built.load()
            except ToolFailure as failure:
                log.warning("a %s tool offers nothing: %s", tool["type"], failure)
                continue
            for offer in built.offers():
                if offer.name not in service:
                    service[offer.name] = ServiceOffer(built, offer)
        return cls(functions, service)

    def chat_tools(self) -> list[Obj]:
        """Function tools as the user defined them, word for word; then what the service's
        own tools offer."""
        chat = [
            {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
            for tool in self.functions.values()
        ]
        chat += [
            s.offer.chat_tool() for s in self.service.values() if s.offer.name not in self.functions
        ]
        return chat

    def is_client_side(self, call: ToolCall) -> bool:
        """A call the client runs: of a function tool. A call of a name no tool offers is
        answered by the service (as a failure the model reads), not sent to the client,
        which could not run it either."""
        return call["name"] in self.functions

    def activities(self) -> list[Obj]:
        """What loading the run's tools did that its steps show, once per tool."""
        tools = {id(s.tool): s.tool for s in self.service.values()}
        return [a for tool in tools.values() if (a := tool.activity()) is not None]

    def needs_approval(self, call: ToolCall) -> bool:
        """A service-side call that waits for its client's approval before it runs (an MCP
        call, by its server's `require_approval`) and has none yet."""
        found = self.service.get(call["name"])
        if found is None or "approved" in call or self.is_client_side(call):
            return False
        return found.tool.needs_approval(call["name"])

    def kind_of(self, name: str) -> str:
        """The type of the tool that offers the function `name` (a function's own type when
        none does: the call is then answered as a failure, `tool_round`)."""
        found = self.service.get(name)
        if found is None or name in self.functions:
            return "function"
        return found.tool.type

    def input_field_of(self, name: str) -> str | None:
        """The argument of the function `name` that its calls show as `input`."""
        found = self.service.get(name)
        if found is None or name in self.functions:
            return None
        return found.offer.input_field

    def typed(self, call: ToolCall) -> ToolCall:
        """The call under its tool's type (`openapi`, `connected_agent`, ...), with its
        `input` where its tool shows one."""
        found = self.service.get(call["name"])
        if found is None or call["name"] in self.functions:
            return call
        typed: Obj = {**call, **found.offer.labels, "type": found.tool.type}
        if found.offer.input_field is not None:
            typed["input"] = field_of(call["arguments"], found.offer.input_field) or ""
        return cast(ToolCall, typed)
