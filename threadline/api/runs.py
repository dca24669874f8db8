"""`/threads/runs`, `/threads/{thread_id}/runs` and run steps."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from threadline.api.deps import Services, json_response, page, project, services
from threadline.domain.errors import InvalidRequest
from threadline.service.requests import (
    MetadataUpdate,
    RunCreate,
    ThreadAndRunCreate,
    ToolOutputsSubmit,
)
from threadline.store.base import PageRequest

router = APIRouter()


def _no_stream(stream: bool | None) -> None:
    if stream:
        raise InvalidRequest("Streaming is not available on this server yet.", param="stream")


@router.post("/threads/runs")
async def create_thread_and_run(
    body: ThreadAndRunCreate, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    _no_stream(body.stream)
    return json_response(await svc.runs.create_thread_and_run(proj, body))


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str,
    body: RunCreate,
    include: list[str] | None = Query(None, alias="include[]"),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    _no_stream(body.stream)
    return json_response(await svc.runs.create(proj, thread_id, body))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    return json_response(await svc.runs.list(proj, thread_id, pages))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: str, run_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    run = await svc.runs.get(proj, thread_id, run_id)
    # The SDKs' polling helpers wait this long between polls.
    return json_response(run, headers={"openai-poll-after-ms": str(svc.poll_after_ms)})


@router.post("/threads/{thread_id}/runs/{run_id}")
async def update_run(
    thread_id: str,
    run_id: str,
    body: MetadataUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    return json_response(await svc.runs.update(proj, thread_id, run_id, body))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str, run_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    return json_response(await svc.runs.cancel(proj, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    thread_id: str,
    run_id: str,
    body: ToolOutputsSubmit,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    _no_stream(body.stream)
    return json_response(await svc.runs.submit_tool_outputs(proj, thread_id, run_id, body))


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_steps(
    thread_id: str,
    run_id: str,
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    return json_response(await svc.runs.list_steps(proj, thread_id, run_id, pages))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    return json_response(await svc.runs.get_step(proj, thread_id, run_id, step_id))
