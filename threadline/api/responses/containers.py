"""`/containers/{id}/files`: the files of a response's code interpreter container
(`service/containers.py`), listed, described and downloaded."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.downloads import download
from threadline.api.json_body import StrictJsonRoute
from threadline.api.lists import list_body
from threadline.domain.records import FileRecord, Obj, PageRequest

router = APIRouter(route_class=StrictJsonRoute)


def _file(record: FileRecord, container_id: str, path: str) -> Obj:
    return {
        "id": record["id"],
        "object": "container.file",
        "container_id": container_id,
        "created_at": record["created_at"],
        "bytes": record["bytes"],
        "path": path,
        # What the code wrote is the assistant's; what it was given, the user's.
        "source": "assistant" if record["purpose"] == "assistants_output" else "user",
    }


@router.get("/containers/{container_id}/files")
async def list_container_files(
    container_id: str,
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
) -> Response:
    found = await svc.containers.page_files(proj, container_id, pages)
    return json_response(list_body(found, lambda held: _file(held[1], container_id, held[0])))


@router.get("/containers/{container_id}/files/{file_id}")
async def get_container_file(
    container_id: str, file_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    record, path = await svc.containers.file(proj, container_id, file_id)
    return json_response(_file(record, container_id, path))


@router.get("/containers/{container_id}/files/{file_id}/content")
async def container_file_content(
    container_id: str, file_id: str, svc: Services = Depends(services), proj: str = Depends(project)
) -> Response:
    record, chunks = await svc.containers.content(proj, container_id, file_id)
    return download(record, chunks)
