"""`/vector_stores`, their `/files` and `/file_batches`, and `/search`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from threadline.api.assistants_v2.render import AssistantsWire, wire
from threadline.api.deps import Services, json_response, page, project, services
from threadline.api.json_body import StrictJsonRoute
from threadline.domain.records import PageRequest
from threadline.service.vector_store_requests import (
    FileBatchCreate,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileUpdate,
    VectorStoreSearch,
    VectorStoreUpdate,
)

router = APIRouter(route_class=StrictJsonRoute)


@router.post("/vector_stores")
async def create_vector_store(
    body: VectorStoreCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.vector_store(await svc.vector_stores.create(proj, body)))


@router.get("/vector_stores")
async def list_vector_stores(
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.page(await svc.vector_stores.list(proj, pages), out.vector_store))


@router.get("/vector_stores/{store_id}")
async def get_vector_store(
    store_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.vector_store(await svc.vector_stores.get(proj, store_id)))


@router.post("/vector_stores/{store_id}")
async def update_vector_store(
    store_id: str,
    body: VectorStoreUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.vector_store(await svc.vector_stores.update(proj, store_id, body)))


@router.delete("/vector_stores/{store_id}")
async def delete_vector_store(
    store_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    await svc.vector_stores.delete(proj, store_id)
    return json_response(out.deleted(store_id, "vector_store"))


@router.post("/vector_stores/{store_id}/search")
async def search_vector_store(
    store_id: str,
    body: VectorStoreSearch,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    query, hits = await svc.vector_stores.search(proj, store_id, body)
    return json_response(out.search_results(query, hits))


# -- a store's files -----------------------------------------------------------------------


@router.post("/vector_stores/{store_id}/files")
async def add_vector_store_file(
    store_id: str,
    body: VectorStoreFileCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    added = await svc.vector_stores.add_file(proj, store_id, body)
    return json_response(out.vector_store_file(added))


@router.get("/vector_stores/{store_id}/files")
async def list_vector_store_files(
    store_id: str,
    status: str | None = Query(None, alias="filter"),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    found = await svc.vector_stores.list_files(proj, store_id, pages, status)
    return json_response(out.page(found, out.vector_store_file))


@router.get("/vector_stores/{store_id}/files/{file_id}")
async def get_vector_store_file(
    store_id: str,
    file_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    found = await svc.vector_stores.get_file(proj, store_id, file_id)
    return json_response(out.vector_store_file(found))


@router.post("/vector_stores/{store_id}/files/{file_id}")
async def update_vector_store_file(
    store_id: str,
    file_id: str,
    body: VectorStoreFileUpdate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    found = await svc.vector_stores.update_file(proj, store_id, file_id, body)
    return json_response(out.vector_store_file(found))


@router.delete("/vector_stores/{store_id}/files/{file_id}")
async def delete_vector_store_file(
    store_id: str,
    file_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    await svc.vector_stores.delete_file(proj, store_id, file_id)
    return json_response(out.deleted(file_id, "vector_store.file"))


# -- batches -------------------------------------------------------------------------------


@router.post("/vector_stores/{store_id}/file_batches")
async def create_file_batch(
    store_id: str,
    body: FileBatchCreate,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    return json_response(out.file_batch(await svc.vector_stores.create_batch(proj, store_id, body)))


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}")
async def get_file_batch(
    store_id: str,
    batch_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    found = await svc.vector_stores.get_batch(proj, store_id, batch_id)
    return json_response(out.file_batch(found))


@router.post("/vector_stores/{store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(
    store_id: str,
    batch_id: str,
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    found = await svc.vector_stores.cancel_batch(proj, store_id, batch_id)
    return json_response(out.file_batch(found))


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(
    store_id: str,
    batch_id: str,
    status: str | None = Query(None, alias="filter"),
    pages: PageRequest = Depends(page),
    svc: Services = Depends(services),
    proj: str = Depends(project),
    out: AssistantsWire = Depends(wire),
) -> Response:
    found = await svc.vector_stores.list_files(proj, store_id, pages, status, batch_id)
    return json_response(out.page(found, out.vector_store_file))
