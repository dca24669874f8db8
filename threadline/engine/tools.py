"""The service tools a worker can run, built once from its settings."""

from __future__ import annotations

from threadline.config import Settings
from threadline.tools.connections import Connections
from threadline.tools.openapi import OpenApiTool
from threadline.tools.toolset import ToolKinds


def tool_kinds(settings: Settings) -> ToolKinds:
    connections = connections_of(settings)
    return ToolKinds({"openapi": lambda tool: OpenApiTool(tool, connections)})


def connections_of(settings: Settings) -> Connections:
    if settings.connections_file is None:
        return Connections()
    return Connections.from_file(settings.connections_file)
