"""`/agents`, `/agents/{name}`, `/agents/{name}/versions` and `/agents/{name}/versions/{n}`
as `azure-ai-projects` 2.x calls them under a project (`api/projects.py`).

`force` on the deletes is for hosted agents' sessions, which prompt agents do not have: it
changes nothing here and is accepted. `kind` filters the list: every agent here is a prompt
agent. An agent's details are patched (`update_details`) to set its endpoint, through which
the OpenAI client of `get_openai_client(agent_name=...)` reaches it (`api/projects.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from starlette.responses import Response

from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.foundry import render
from threadline.api.json_body import StrictJsonRoute
from threadline.api.lists import list_body
from threadline.domain.records import Page, PageRequest
from threadline.service.agent_versions import AgentVersionCreate

router = APIRouter(route_class=StrictJsonRoute)


@router.get("/agents")
async def list_agents(
    kind: str | None = Query(None),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    found = await svc.agent_versions.list(proj, pages)
    if kind is not None and kind != "prompt":
        found = Page()
    return json_response(list_body(found, render.agent))


@router.get("/agents/{agent_name}")
async def get_agent(
    agent_name: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    return json_response(render.agent(await svc.agent_versions.get(proj, agent_name)))


@router.patch("/agents/{agent_name}")
async def update_agent_details(
    agent_name: str,
    body: dict[str, Any] = Body(...),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    """`update_details`: a JSON merge patch (`application/merge-patch+json`) of the agent's
    endpoint (`service/agent_endpoints.py`)."""
    return json_response(
        render.agent(await svc.agent_versions.update_details(proj, agent_name, body))
    )


@router.delete("/agents/{agent_name}")
async def delete_agent(
    agent_name: str,
    force: bool | None = Query(None),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    await svc.agent_versions.delete(proj, agent_name)
    return json_response(render.agent_deleted(agent_name))


@router.post("/agents/{agent_name}/versions")
async def create_version(
    agent_name: str,
    body: AgentVersionCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    made = await svc.agent_versions.create_version(proj, agent_name, body)
    return json_response(render.version(made))


@router.get("/agents/{agent_name}/versions")
async def list_versions(
    agent_name: str,
    include_drafts: bool | None = Query(None),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    found = await svc.agent_versions.list_versions(proj, agent_name, pages)
    return json_response(list_body(found, render.version))


@router.get("/agents/{agent_name}/versions/{agent_version}")
async def get_version(
    agent_name: str,
    agent_version: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    found = await svc.agent_versions.get_version(proj, agent_name, agent_version)
    return json_response(render.version(found))


@router.delete("/agents/{agent_name}/versions/{agent_version}")
async def delete_version(
    agent_name: str,
    agent_version: str,
    force: bool | None = Query(None),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    await svc.agent_versions.delete_version(proj, agent_name, agent_version)
    return json_response(render.version_deleted(agent_name, agent_version))
