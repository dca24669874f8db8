"""`/conversations` and `/conversations/{id}/items`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.json_body import StrictJsonRoute
from threadline.api.responses import render
from threadline.domain.records import PageRequest
from threadline.service.conversations import ConversationCreate, ConversationUpdate, ItemsCreate
from threadline.service.unsupported import RESPONSE_INCLUDES, refuse_include

router = APIRouter(route_class=StrictJsonRoute)


@router.post("/conversations")
async def create_conversation(
    body: ConversationCreate | None = None,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    created = await svc.conversations.create(proj, body or ConversationCreate())
    return json_response(render.conversation(created))


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    return json_response(render.conversation(await svc.conversations.get(proj, conversation_id)))


@router.post("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: str,
    body: ConversationUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    updated = await svc.conversations.update(proj, conversation_id, body)
    return json_response(render.conversation(updated))


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(
    conversation_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    await svc.conversations.delete(proj, conversation_id)
    return json_response(render.deleted(conversation_id))


@router.post("/conversations/{conversation_id}/items")
async def create_items(
    conversation_id: str,
    body: ItemsCreate,
    include: list[str] | None = Query(None, alias="include[]"),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    refuse_include(include)
    added = await svc.conversations.add_items(proj, conversation_id, body)
    return json_response(render.items_list(added))


@router.get("/conversations/{conversation_id}/items")
async def list_items(
    conversation_id: str,
    include: list[str] | None = Query(None, alias="include[]"),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    shown = refuse_include(include, allowed=RESPONSE_INCLUDES)
    found = await svc.conversations.list_items(proj, conversation_id, pages)
    return json_response(render.items_page(found, shown))


@router.get("/conversations/{conversation_id}/items/{item_id}")
async def get_item(
    conversation_id: str,
    item_id: str,
    include: list[str] | None = Query(None, alias="include[]"),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    shown = refuse_include(include, allowed=RESPONSE_INCLUDES)
    found = await svc.conversations.get_item(proj, conversation_id, item_id)
    return json_response(render.item(found, shown))


@router.delete("/conversations/{conversation_id}/items/{item_id}")
async def delete_item(
    conversation_id: str,
    item_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    remaining = await svc.conversations.delete_item(proj, conversation_id, item_id)
    return json_response(render.conversation(remaining))
