"""Agents and agent versions in the shapes `azure-ai-projects` 2.x reads (`AgentDetails`,
`AgentVersionDetails` and the deletion answers; their pages are `api/lists.py`'s)."""

from __future__ import annotations

from threadline.domain.agent_versions import Agent, AgentVersion
from threadline.domain.records import Obj


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


def agent_deleted(name: str) -> Obj:
    return {"object": "agent.deleted", "name": name, "deleted": True}


def version_deleted(name: str, number: str) -> Obj:
    return {"object": "agent.version.deleted", "name": name, "version": number, "deleted": True}
