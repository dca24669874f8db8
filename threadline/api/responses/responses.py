"""`/responses`: create (answered when settled, streamed, or at once in the background),
retrieve, delete, cancel and input items."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response, StreamingResponse

from threadline.api.deps import (
    Services,
    endpoint_agent,
    json_response,
    page,
    project,
    services,
)
from threadline.api.json_body import StrictJsonRoute
from threadline.api.responses import render
from threadline.api.responses.stream import response_events
from threadline.domain.errors import InvalidRequest, NotFound
from threadline.domain.records import PageRequest
from threadline.service.responses import InputTokensCount, ResponseCreate
from threadline.service.unsupported import RESPONSE_INCLUDES, refuse_include

router = APIRouter(route_class=StrictJsonRoute)


@router.post("/responses")
async def create_response(
    body: ResponseCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    agent: str | None = Depends(endpoint_agent),
) -> Response:
    run = await svc.responses.create(proj, body, endpoint=agent)
    keep = run["response"]["store"]
    if body.stream:
        return _event_stream(_stream(svc, proj, run["id"], keep))
    if body.background:
        return json_response(render.response(run))
    await svc.responses.settled(run["id"])
    view = await svc.responses.view_of(run["id"])
    if view is None:
        raise NotFound("response", run["id"])  # deleted while it ran
    if not keep:
        await svc.responses.forget(proj, run["id"])
    return json_response(render.response_of(view))


def _event_stream(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(svc: Services, proj: str, run_id: str, keep: bool) -> AsyncIterator[bytes]:
    """A response not to be kept is deleted once its stream has carried it, or, if its
    client leaves first, once it settles."""
    ended = False
    try:
        async for chunk in response_events(svc.responses.follow(run_id), svc.responses.view_of):
            yield chunk
        ended = True
    finally:
        if not keep and ended:
            await svc.responses.forget(proj, run_id)
        elif not keep:
            svc.responses.forget_later(proj, run_id)


@router.post("/responses/input_tokens")
async def count_input_tokens(
    body: InputTokensCount,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    agent: str | None = Depends(endpoint_agent),
) -> Response:
    tokens = await svc.responses.count_input_tokens(proj, body, agent)
    return json_response({"object": "response.input_tokens", "input_tokens": tokens})


@router.get("/responses/{response_id}")
async def get_response(
    response_id: str,
    include: list[str] | None = Query(None, alias="include[]"),
    stream: bool | None = Query(None),
    starting_after: int | None = Query(None, ge=0),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    """With `stream=true`, the response's events from the start, or after `starting_after`:
    a stored response's are replayed and a live one's followed until it ends, from whichever
    API process, as they are read from the run's event log."""
    shown = refuse_include(include, allowed=RESPONSE_INCLUDES)
    if starting_after is not None and not stream:
        raise InvalidRequest(
            "'starting_after' resumes a stream: it needs 'stream=true'.", param="starting_after"
        )
    if stream and shown:
        raise InvalidRequest(
            "A stream shows what the response's own request included: 'include[]' is for "
            "retrieving it whole.",
            param="include[]",
            code="unsupported_value",
        )
    view = await svc.responses.get(proj, response_id)
    if stream:
        after = -1 if starting_after is None else starting_after
        return _event_stream(
            response_events(svc.responses.follow(response_id), svc.responses.view_of, after)
        )
    return json_response(
        render.response_of(view, shown),
        headers={"openai-poll-after-ms": str(svc.poll_after_ms)},
    )


@router.delete("/responses/{response_id}")
async def delete_response(
    response_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    await svc.responses.delete(proj, response_id)
    return json_response(render.response_deleted(response_id))


@router.post("/responses/{response_id}/cancel")
async def cancel_response(
    response_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    return json_response(render.response_of(await svc.responses.cancel(proj, response_id)))


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    include: list[str] | None = Query(None, alias="include[]"),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    refuse_include(include)
    found = await svc.responses.input_items(proj, response_id, pages)
    return json_response(render.items_page(found))
