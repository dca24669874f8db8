"""Agents and agent versions in the shapes `azure-ai-projects` 2.x reads (`AgentDetails`,
`AgentVersionDetails`, the deletion answers and the pages its pager walks by `last_id`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from threadline.domain.agent_versions import Agent, AgentVersion
from threadline.domain.records import Obj, Page

R = TypeVar("R")


def version(record: AgentVersion) -> Obj:
    return {
        "object": "agent.version",
        "id": record["id"],
        "name": record["name"],
        "version": record["version"],
        "description": record["description"],
        "created_at": record["created_at"],
        "metadata": record["metadata"],
        "definition": record["definition"],
        "draft": False,
        # A prompt agent is ready once made (the hosted service provisions hosted agents).
        "status": "active",
    }


def agent(record: Agent) -> Obj:
    return {
        "object": "agent",
        "id": record["id"],
        "name": record["name"],
        "state": "enabled",
        "configuration_state": "enabled",
        "versions": {"latest": version(record["latest"])},
        **({"agent_endpoint": endpoint} if (endpoint := record.get("agent_endpoint")) else {}),
    }


def page(found: Page[R], render: Callable[[R], Obj]) -> Obj:
    data: Sequence[Obj] = [render(item) for item in found.data]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": found.has_more,
    }


def agent_deleted(name: str) -> Obj:
    return {"object": "agent.deleted", "name": name, "deleted": True}


def version_deleted(name: str, number: str) -> Obj:
    return {"object": "agent.version.deleted", "name": name, "version": number, "deleted": True}
