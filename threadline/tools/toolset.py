"""The tools of one run, as its model is offered them and as its calls are sorted.

A function tool is offered as itself and run by the client. Every other tool is built by
its kind (`ToolKinds`) into a `ServiceTool`, which offers one function or several (an
OpenAPI spec's operations, an MCP server's tools); a call of one of those is run here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from threadline.domain.records import Obj, Tool, ToolCall
from threadline.tools.base import Offer, ServiceTool

# Builds the service tool one of a run's tool definitions describes.
ToolBuilder = Callable[[Tool], ServiceTool]


@dataclass(frozen=True)
class ServiceOffer:
    tool: ServiceTool
    offer: Offer


class ToolKinds:
    """The service tools this worker can run, by type."""

    def __init__(self, builders: dict[str, ToolBuilder] | None = None):
        self.builders = dict(builders or {})

    def build(self, tool: Tool) -> ServiceTool:
        builder = self.builders.get(tool["type"])
        if builder is None:
            # Refused when the run or assistant was made (`service/unsupported.py`).
            raise ValueError(f"no tool kind {tool['type']!r} on this worker")
        return builder(tool)


class Toolset:
    def __init__(self, functions: Sequence[Tool], service: dict[str, ServiceOffer]):
        """`functions`: the run's function tools, as it holds them."""
        self.functions = {tool["name"]: tool for tool in functions}
        self.service = service

    @classmethod
    def of(cls, tools: Sequence[Tool], kinds: ToolKinds) -> Toolset:
        functions: list[Tool] = []
        service: dict[str, ServiceOffer] = {}
        for tool in tools:
            if tool["type"] == "function":
                functions.append(tool)
                continue
            built = kinds.build(tool)
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

    def typed(self, call: ToolCall) -> ToolCall:
        """The call under its tool's type (`openapi`, `connected_agent`, ...)."""
        found = self.service.get(call["name"])
        if found is None or call["name"] in self.functions:
            return call
        return {**call, "type": found.tool.type}
