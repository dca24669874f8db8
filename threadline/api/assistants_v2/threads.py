"""`/threads` and `/threads/{thread_id}/messages`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from threadline.api.assistants_v2.render import AssistantsWire, wire
from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.json_body import StrictJsonRoute
from threadline.domain.records import PageRequest
from threadline.service.requests import MessageCreate, MetadataUpdate, ThreadCreate, ThreadUpdate

router = APIRouter(route_class=StrictJsonRoute)


@router.post("/threads")
async def create_thread(
    body: ThreadCreate | None = None,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.thread(await svc.threads.create(proj, body or ThreadCreate())))


@router.get("/threads")
async def list_threads(
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    """The project's threads, newest first by default (the Azure client's `threads.list`;
    the openai SDK has no call for it)."""
    return json_response(out.page(await svc.threads.list(proj, pages), out.thread))


@router.get("/threads/{thread_id}")
async def get_thread(
    thread_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.thread(await svc.threads.get(proj, thread_id)))


@router.post("/threads/{thread_id}")
async def update_thread(
    thread_id: str,
    body: ThreadUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.thread(await svc.threads.update(proj, thread_id, body)))


@router.delete("/threads/{thread_id}")
async def delete_thread(
    thread_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    await svc.threads.delete(proj, thread_id)
    return json_response(out.deleted(thread_id, "thread"))


@router.post("/threads/{thread_id}/messages")
async def create_message(
    thread_id: str,
    body: MessageCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.message(await svc.messages.create(proj, thread_id, body)))


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    thread_id: str,
    run_id: str | None = Query(None),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(
        out.page(await svc.messages.list(proj, thread_id, pages, run_id), out.message)
    )


@router.get("/threads/{thread_id}/messages/{message_id}")
async def get_message(
    thread_id: str,
    message_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.message(await svc.messages.get(proj, thread_id, message_id)))


@router.post("/threads/{thread_id}/messages/{message_id}")
async def update_message(
    thread_id: str,
    message_id: str,
    body: MetadataUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.message(await svc.messages.update(proj, thread_id, message_id, body)))


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_message(
    thread_id: str,
    message_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    await svc.messages.delete(proj, thread_id, message_id)
    return json_response(out.deleted(message_id, "thread.message"))
