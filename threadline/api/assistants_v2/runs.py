"""`/threads/runs`, `/threads/{thread_id}/runs` and run steps."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query
from starlette.responses import Response

from threadline.api.assistants_v2.render import AssistantsWire, wire
from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.json_body import StrictJsonRoute
from threadline.api.streaming import sse_response
from threadline.domain.errors import InvalidRequest
from threadline.domain.limits import MAX_EVENT_SEQ
from threadline.domain.records import PageRequest
from threadline.service.requests import (
    MetadataUpdate,
    RunCreate,
    ThreadAndRunCreate,
    ToolOutputsSubmit,
)
from threadline.service.unsupported import check_include

router = APIRouter(route_class=StrictJsonRoute)


@router.post("/threads/runs")
async def create_thread_and_run(
    body: ThreadAndRunCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    run = await svc.runs.create_thread_and_run(proj, body)
    if body.stream:
        return sse_response(svc.runs.follow_own(run["id"]), out.event)
    return json_response(out.run(run))


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str,
    body: RunCreate,
    include: list[str] | None = Query(None, alias="include[]"),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    run = await svc.runs.create(proj, thread_id, body, include)
    if body.stream:
        return sse_response(svc.runs.follow_own(run["id"]), out.event)
    return json_response(out.run(run))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.page(await svc.runs.list(proj, thread_id, pages), out.run))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: str,
    run_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    run = await svc.runs.get(proj, thread_id, run_id)
    # The SDKs' polling helpers wait this long between polls.
    return json_response(out.run(run), headers={"openai-poll-after-ms": str(svc.poll_after_ms)})


@router.post("/threads/{thread_id}/runs/{run_id}")
async def update_run(
    thread_id: str,
    run_id: str,
    body: MetadataUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.run(await svc.runs.update(proj, thread_id, run_id, body)))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.run(await svc.runs.cancel(proj, thread_id, run_id)))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    thread_id: str,
    run_id: str,
    body: ToolOutputsSubmit,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    resumed = await svc.runs.submit_tool_outputs(proj, thread_id, run_id, body)
    if body.stream:
        return sse_response(svc.runs.follow_own(run_id, resumed.after_seq), out.event)
    return json_response(out.run(resumed.run))


@router.get("/threads/{thread_id}/runs/{run_id}/events")
async def stream_run_events(
    thread_id: str,
    run_id: str,
    after: int | None = Query(None, ge=0, le=MAX_EVENT_SEQ),
    last_event_id: str | None = Header(None),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    """Stream a run's events from a sequence number: `?after=N` or a reconnecting client's
    `Last-Event-ID`; from the start when neither is given."""
    if after is None and last_event_id is not None:
        # `isascii` too: `isdigit` takes digits `int` refuses, such as '²'.
        text = last_event_id.strip()
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_EVENT_SEQ:
            raise InvalidRequest(
                f"Last-Event-ID must be an event sequence number from 0 to {MAX_EVENT_SEQ}.",
                param="Last-Event-ID",
            )
        after = int(text)
    return sse_response(await svc.runs.follow(proj, thread_id, run_id, after or 0), out.event)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_steps(
    thread_id: str,
    run_id: str,
    pages: PageRequest = Depends(page),
    include: list[str] | None = Query(None, alias="include[]"),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    content = bool(check_include(include, "include[]"))
    found = await svc.runs.list_steps(proj, thread_id, run_id, pages)
    return json_response(out.page(found, lambda step: out.step(step, include_content=content)))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    include: list[str] | None = Query(None, alias="include[]"),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    content = bool(check_include(include, "include[]"))
    found = await svc.runs.get_step(proj, thread_id, run_id, step_id)
    return json_response(out.step(found, include_content=content))
