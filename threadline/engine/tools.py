"""The service tools a worker can run, built once from its settings."""

from __future__ import annotations

from threadline.config import Settings
from threadline.tools.toolset import ToolKinds


def tool_kinds(settings: Settings) -> ToolKinds:
    return ToolKinds({})
