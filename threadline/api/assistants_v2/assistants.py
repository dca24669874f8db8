"""`/assistants`: create, list, retrieve, modify, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from threadline.api.assistants_v2.render import AssistantsWire, wire
from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.json_body import StrictJsonRoute
from threadline.domain.records import PageRequest
from threadline.service.requests import AssistantCreate, AssistantUpdate

router = APIRouter(route_class=StrictJsonRoute)


@router.post("/assistants")
async def create_assistant(
    body: AssistantCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.assistant(await svc.assistants.create(proj, body)))


@router.get("/assistants")
async def list_assistants(
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.page(await svc.assistants.list(proj, pages), out.assistant))


@router.get("/assistants/{assistant_id}")
async def get_assistant(
    assistant_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.assistant(await svc.assistants.get(proj, assistant_id)))


@router.post("/assistants/{assistant_id}")
async def update_assistant(
    assistant_id: str,
    body: AssistantUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.assistant(await svc.assistants.update(proj, assistant_id, body)))


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(
    assistant_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    await svc.assistants.delete(proj, assistant_id)
    return json_response(out.deleted(assistant_id, "assistant"))
