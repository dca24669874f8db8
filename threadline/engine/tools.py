"""The service tools a worker can run, built once from its settings."""

from __future__ import annotations

from threadline.config import Settings
from threadline.engine.sub_runs import ServiceSubRuns
from threadline.service.files import FileService
from threadline.service.runs import RunService
from threadline.service.tool_checks import ToolChecks
from threadline.store.base import Store
from threadline.store.blobs import BlobStore
from threadline.tools.code_interpreter.pool import SandboxPool
from threadline.tools.code_interpreter.tool import CodeInterpreterTool
from threadline.tools.connected_agent import ConnectedAgentTool
from threadline.tools.connections import Connections
from threadline.tools.file_search.search import Searcher
from threadline.tools.file_search.tool import FileSearchTool
from threadline.tools.mcp import McpTool, mcp_resource
from threadline.tools.openapi import OpenApiTool
from threadline.tools.toolset import ToolBuilder, ToolKinds


def tool_kinds(
    settings: Settings,
    store: Store,
    searcher: Searcher | None = None,
    blobs: BlobStore | None = None,
    sandboxes: SandboxPool | None = None,
) -> ToolKinds:
    connections = connections_of(settings)
    runs = RunService(
        store,
        settings.run_expiry_seconds,
        limits=settings.limits(),
        tool_checks=ToolChecks(connections),
    )
    sub_runs = ServiceSubRuns(store, runs)
    kinds: dict[str, ToolBuilder] = {
        "openapi": lambda tool, _: OpenApiTool(tool, connections),
        "connected_agent": lambda tool, _: ConnectedAgentTool(
            tool, sub_runs, settings.max_agent_depth
        ),
        "mcp": lambda tool, resources: McpTool(
            tool, mcp_resource(resources, tool), connections=connections
        ),
    }
    if searcher is not None:
        kinds["file_search"] = lambda tool, resources: FileSearchTool(
            tool, resources, store, searcher
        )
    if blobs is not None and sandboxes is not None:
        files = FileService(store, blobs, settings.max_file_bytes)
        kinds["code_interpreter"] = lambda _, resources: CodeInterpreterTool(
            resources, store, files, sandboxes
        )
    return ToolKinds(kinds)


def connections_of(settings: Settings) -> Connections:
    if settings.connections_file is None:
        return Connections()
    return Connections.from_file(settings.connections_file)
