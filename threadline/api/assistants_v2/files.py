"""`/files`: upload, list, retrieve, delete, and the bytes of a file."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from threadline.api.assistants_v2.render import AssistantsWire, wire
from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.downloads import download
from threadline.api.uploads import received_upload
from threadline.domain.records import PageRequest

router = APIRouter()


@router.post("/files")
async def upload_file(
    request: Request,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    async with received_upload(request) as upload:
        return json_response(out.file(await svc.files.create(proj, upload)))


@router.get("/files")
async def list_files(
    purpose: str | None = Query(None),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.page(await svc.files.list(proj, pages, purpose), out.file))


@router.get("/files/{file_id}")
async def get_file(
    file_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.file(await svc.files.get(proj, file_id)))


@router.delete("/files/{file_id}")
async def delete_file(
    file_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    await svc.files.delete(proj, file_id)
    # The one deletion whose object is its kind's own name, not `{kind}.deleted`.
    return json_response({"id": file_id, "object": "file", "deleted": True})


@router.get("/files/{file_id}/content")
async def file_content(
    file_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    file, chunks = await svc.files.content(proj, file_id)
    return download(file, chunks)
