"""The checks a tool the service runs itself must pass before an assistant or run holds it,
and what the service adds to its stored definition.

An OpenAPI tool's spec is validated when the assistant or run is made, not when the model
first calls it: a bad spec is then a 400 naming the field, with nothing stored, rather than
a run that quietly cannot use its tool.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj, Tool
from threadline.store.base import StoreTx
from threadline.tools.connections import Connections
from threadline.tools.mcp import (
    check_allowed_tools,
    check_connection,
    mcp_resource,
    server_headers,
)
from threadline.tools.openapi import openapi_functions, validate_openapi_definition


class ToolChecks:
    def __init__(self, connections: Connections | None = None):
        self.connections = connections if connections is not None else Connections()

    def check(self, tools: Sequence[Tool] | None, param: str = "tools") -> None:
        for index, tool in enumerate(tools or []):
            if tool["type"] == "openapi":
                validate_openapi_definition(tool, f"{param}[{index}]", self.connections)

    async def check_servers(
        self, tools: Sequence[Tool] | None, resources: Obj, param: str = "tools"
    ) -> None:
        """An MCP tool's connection (`project_connection_id`) must be one the service has,
        and its `allowed_tools` tools its server has: asked of the server (with the headers
        the request gives it, and the connection's secret) when the agent or run is made."""
        for index, tool in enumerate(tools or []):
            if tool["type"] != "mcp":
                continue
            resource = mcp_resource(resources, tool) or {}
            check_connection(resource, self.connections, f"{param}[{index}]")
            if tool.get("allowed_tools"):
                label = str(tool.get("server_label") or "")
                headers = server_headers(resource, self.connections, label)
                try:
                    await check_allowed_tools(tool, headers or None, f"{param}[{index}]")
                except InvalidRequest as refused:  # a server may echo what it was sent
                    refused.message = self.connections.redact(refused.message)
                    raise

    @staticmethod
    def completed(tool: Tool) -> Tool:
        """An OpenAPI tool with its spec's operations as `functions`, as the hosted service
        answers it (what a client sent there is made anew)."""
        if tool["type"] != "openapi":
            return tool
        tool = copy.deepcopy(tool)
        tool["openapi"].pop("functions", None)
        tool["openapi"]["functions"] = openapi_functions(tool)
        return tool


async def check_connected_agents(
    tx: StoreTx, project: str, tools: Sequence[Tool] | None, param: str = "tools"
) -> None:
    """A connected agent must be an agent of the same project when it is named: one deleted
    later is a failure the calling model reads, when it calls it."""
    for index, tool in enumerate(tools or []):
        if tool["type"] != "connected_agent":
            continue
        agent_id = tool["connected_agent"]["id"]
        if await tx.get_assistant(project, agent_id) is None:
            raise InvalidRequest(
                f"No agent found with id '{agent_id}' in this project.",
                param=f"{param}[{index}].connected_agent.id",
            )
