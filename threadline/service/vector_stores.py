"""Vector stores: a searchable index of files, filled in the background.

Adding a file to a store writes the store's file as `in_progress` and a job on the queue in
one transaction; a worker ingests it (`engine/ingestion.py`) and completes it. So a request
answers at once, and a file accepted is indexed even if the process that accepted it dies.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Literal

from threadline.domain.clock import now
from threadline.domain.errors import InvalidRequest, NotFound, UpstreamFailed
from threadline.domain.expiry import expires_at, is_expired
from threadline.domain.ids import IdKind, new_id
from threadline.domain.limits import check_metadata
from threadline.domain.records import (
    Attributes,
    FileBatch,
    FileBatchView,
    FileCounts,
    Obj,
    Page,
    PageRequest,
    SearchHit,
    VectorStore,
    VectorStoreFile,
    VectorStoreView,
)
from threadline.providers.embedders.base import EmbeddingError
from threadline.service.vector_store_requests import (
    AutoStrategy,
    ExpiresAfter,
    FileBatchCreate,
    StaticStrategy,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileUpdate,
    VectorStoreSearch,
    VectorStoreUpdate,
    chunking_record,
)
from threadline.store.base import Store, StoreTx
from threadline.tools.file_search.parse import SUPPORTED_EXTENSIONS, supported
from threadline.tools.file_search.search import Searcher, SearchRequest

INGEST_JOB = "ingest_file"
# The hosted service gives a thread's own store (made from attachments) this expiry.
THREAD_STORE_EXPIRY = {"anchor": "last_active_at", "days": 7}
# A search or run marks its stores active; more often than this is one write per search
# for a date no one reads to the second.
ACTIVITY_RESOLUTION_SECONDS = 60


def _counts(by_status: dict[str, int]) -> FileCounts:
    counts = FileCounts(
        in_progress=by_status.get("in_progress", 0),
        completed=by_status.get("completed", 0),
        failed=by_status.get("failed", 0),
        cancelled=by_status.get("cancelled", 0),
        total=0,
    )
    counts["total"] = sum(by_status.values())
    return counts


async def view_of(tx: StoreTx, store: VectorStore) -> VectorStoreView:
    by_status, usage = await tx.file_counts(store["id"])
    counts = _counts(by_status)
    status: Literal["expired", "in_progress", "completed"]
    if is_expired(store):
        status = "expired"
    elif counts["in_progress"]:
        status = "in_progress"
    else:
        status = "completed"
    return VectorStoreView(**store, status=status, file_counts=counts, usage_bytes=usage)


async def batch_view(tx: StoreTx, batch: FileBatch) -> FileBatchView:
    return FileBatchView(**batch, file_counts=_counts(await tx.batch_counts(batch["id"])))


def check_attributes(attributes: Attributes | None, param: str = "attributes") -> Attributes:
    for key, value in (attributes or {}).items():
        if isinstance(value, float) and value != value:
            raise InvalidRequest(f"Invalid '{param}.{key}': not a number.", param=param)
    return dict(attributes or {})


async def add_files(
    tx: StoreTx,
    project: str,
    store_id: str,
    file_ids: Sequence[str],
    chunking: Obj,
    attributes: Sequence[Attributes] | None = None,
    batch_id: str | None = None,
    param: str = "file_ids",
) -> list[VectorStoreFile]:
    """Put files into a store and queue their ingestion; a file already there is left as
    it is (and returned as it is). `param` names the list of ids in errors (or the one id:
    `file_id`)."""
    unique = list(dict.fromkeys(file_ids))
    found = {file["id"]: file for file in await tx.get_files(project, unique)}
    for index, file_id in enumerate(file_ids):
        where = param if param == "file_id" else f"{param}[{index}]"
        file = found.get(file_id)
        if file is None:
            raise InvalidRequest(f"No file found with id '{file_id}'.", param=where)
        if not supported(file["filename"]):
            extensions = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            raise InvalidRequest(
                f"Files with the extension of '{file['filename']}' are not supported for "
                f"retrieval. Supported extensions: {extensions}.",
                param=where,
                code="unsupported_file",
            )
    added: list[VectorStoreFile] = []
    for index, file_id in enumerate(unique):
        record = VectorStoreFile(
            id=file_id,
            vector_store_id=store_id,
            created_at=now(),
            status="in_progress",
            last_error=None,
            usage_bytes=0,
            chunking_strategy=chunking,
            attributes=attributes[index] if attributes is not None else {},
            batch_id=batch_id,
        )
        if await tx.insert_vector_store_file(record):
            job = {"project": project, "vector_store_id": store_id, "file_id": file_id}
            await tx.insert_job(new_id(IdKind.JOB), INGEST_JOB, job)
            added.append(record)
        else:
            existing = await tx.get_vector_store_file(store_id, file_id)
            if existing is not None:
                added.append(existing)
    return added


async def create_store(
    tx: StoreTx,
    project: str,
    *,
    name: str | None,
    file_ids: Sequence[str],
    expires_after: Obj | None,
    chunking: Obj,
    metadata: dict[str, str],
    param: str = "file_ids",
) -> VectorStore:
    created = now()
    store = VectorStore(
        id=new_id(IdKind.VECTOR_STORE),
        created_at=created,
        name=name,
        metadata=metadata,
        expires_after=expires_after,
        expires_at=expires_at(expires_after, created),
        last_active_at=created,
    )
    await tx.insert_vector_store(project, store)
    await add_files(tx, project, store["id"], file_ids, chunking, param=param)
    return store


async def usable_stores(
    tx: StoreTx, project: str, store_ids: Sequence[str], param: str
) -> list[VectorStore]:
    """The stores, each of this project and not expired, or a 400 naming the one that is not."""
    found = {store["id"]: store for store in await tx.get_vector_stores(project, store_ids)}
    stores = []
    for index, store_id in enumerate(store_ids):
        store = found.get(store_id)
        if store is None:
            raise InvalidRequest(
                f"No vector store found with id '{store_id}'.", param=f"{param}[{index}]"
            )
        if is_expired(store):
            raise InvalidRequest(
                f"Vector store '{store_id}' has expired.",
                param=f"{param}[{index}]",
                code="vector_store_expired",
            )
        stores.append(store)
    return stores


def stale_activity(stores: Sequence[VectorStore]) -> bool:
    """Whether some store's `last_active_at` is older than is worth a write to move."""
    at = now()
    return any(at - store["last_active_at"] >= ACTIVITY_RESOLUTION_SECONDS for store in stores)


async def mark_active(tx: StoreTx, project: str, stores: Sequence[VectorStore]) -> None:
    at = now()
    for store in stores:
        if at - store["last_active_at"] < ACTIVITY_RESOLUTION_SECONDS:
            continue
        changes: Obj = {"last_active_at": at}
        if store["expires_after"] is not None:
            changes["expires_at"] = expires_at(store["expires_after"], at)
        await tx.update_vector_store(project, store["id"], changes)


def _strategy(strategy: AutoStrategy | StaticStrategy | None) -> Obj:
    return chunking_record(strategy)


def _expiry(expires_after: ExpiresAfter | None) -> Obj | None:
    return None if expires_after is None else expires_after.model_dump()


class VectorStoreService:
    def __init__(self, store: Store, searcher: Searcher):
        self.store = store
        self.searcher = searcher

    async def _store(self, tx: StoreTx, project: str, store_id: str) -> VectorStore:
        found = await tx.get_vector_store(project, store_id)
        if found is None:
            raise NotFound("vector store", store_id)
        return found

    async def create(self, project: str, body: VectorStoreCreate) -> VectorStoreView:
        check_metadata(body.metadata)
        async with self.store.transaction() as tx:
            store = await create_store(
                tx,
                project,
                name=body.name,
                file_ids=body.file_ids or [],
                expires_after=_expiry(body.expires_after),
                chunking=_strategy(body.chunking_strategy),
                metadata=body.metadata or {},
            )
            return await view_of(tx, store)

    async def get(self, project: str, store_id: str) -> VectorStoreView:
        async with self.store.transaction(durable=False) as tx:
            return await view_of(tx, await self._store(tx, project, store_id))

    async def list(self, project: str, page: PageRequest) -> Page[VectorStoreView]:
        async with self.store.transaction(durable=False) as tx:
            found = await tx.page_vector_stores(project, page)
            views = [await view_of(tx, store) for store in found.data]
        return Page(data=views, has_more=found.has_more)

    async def update(self, project: str, store_id: str, body: VectorStoreUpdate) -> VectorStoreView:
        check_metadata(body.metadata)
        given = body.model_fields_set
        async with self.store.transaction() as tx:
            store = await self._store(tx, project, store_id)
            changes: Obj = {}
            if "name" in given:
                changes["name"] = body.name
            if "metadata" in given:
                changes["metadata"] = body.metadata or {}
            if "expires_after" in given:
                expiry = _expiry(body.expires_after)
                changes["expires_after"] = expiry
                changes["expires_at"] = expires_at(expiry, store["last_active_at"])
            if changes:
                updated = await tx.update_vector_store(project, store_id, changes)
                store = updated if updated is not None else store
            return await view_of(tx, store)

    async def delete(self, project: str, store_id: str) -> None:
        async with self.store.transaction() as tx:
            if not await tx.delete_vector_store(project, store_id):
                raise NotFound("vector store", store_id)

    # -- files -----------------------------------------------------------------------------

    async def add_file(
        self, project: str, store_id: str, body: VectorStoreFileCreate
    ) -> VectorStoreFile:
        attributes = check_attributes(body.attributes)
        async with self.store.transaction() as tx:
            await self._store(tx, project, store_id)
            [added] = await add_files(
                tx,
                project,
                store_id,
                [body.file_id],
                _strategy(body.chunking_strategy),
                [attributes],
                param="file_id",
            )
            return added

    async def _file(
        self, tx: StoreTx, project: str, store_id: str, file_id: str
    ) -> VectorStoreFile:
        await self._store(tx, project, store_id)
        found = await tx.get_vector_store_file(store_id, file_id)
        if found is None:
            raise NotFound("file", file_id)
        return found

    async def get_file(self, project: str, store_id: str, file_id: str) -> VectorStoreFile:
        async with self.store.transaction(durable=False) as tx:
            return await self._file(tx, project, store_id, file_id)

    async def update_file(
        self, project: str, store_id: str, file_id: str, body: VectorStoreFileUpdate
    ) -> VectorStoreFile:
        attributes = check_attributes(body.attributes)
        async with self.store.transaction() as tx:
            await self._file(tx, project, store_id, file_id)
            updated = await tx.update_vector_store_file(
                store_id, file_id, {"attributes": attributes}
            )
            if updated is None:
                raise NotFound("file", file_id)
            return updated

    async def delete_file(self, project: str, store_id: str, file_id: str) -> None:
        async with self.store.transaction() as tx:
            await self._store(tx, project, store_id)
            if not await tx.delete_vector_store_file(store_id, file_id):
                raise NotFound("file", file_id)

    async def list_files(
        self,
        project: str,
        store_id: str,
        page: PageRequest,
        status: str | None,
        batch_id: str | None = None,
    ) -> Page[VectorStoreFile]:
        if status is not None and status not in ("in_progress", "completed", "failed", "cancelled"):
            raise InvalidRequest(f"Invalid value for 'filter': '{status}'.", param="filter")
        async with self.store.transaction(durable=False) as tx:
            await self._store(tx, project, store_id)
            if batch_id is not None and await tx.get_file_batch(store_id, batch_id) is None:
                raise NotFound("file batch", batch_id)
            return await tx.page_vector_store_files(store_id, page, status, batch_id)

    # -- batches ---------------------------------------------------------------------------

    async def create_batch(
        self, project: str, store_id: str, body: FileBatchCreate
    ) -> FileBatchView:
        if (body.file_ids is None) == (body.files is None):
            raise InvalidRequest(
                "Give exactly one of 'file_ids' and 'files'.",
                param="file_ids" if body.file_ids is None else "files",
            )
        common = check_attributes(body.attributes)
        if body.files is not None:
            file_ids = [item.file_id for item in body.files]
            attributes = [
                check_attributes(item.attributes, f"files[{index}].attributes") or common
                for index, item in enumerate(body.files)
            ]
            param = "files"
        else:
            file_ids = list(body.file_ids or [])
            attributes = [common for _ in file_ids]
            param = "file_ids"
        if not file_ids:
            raise InvalidRequest(f"'{param}' must name at least one file.", param=param)
        chunking = _strategy(body.chunking_strategy)
        async with self.store.transaction() as tx:
            await self._store(tx, project, store_id)
            batch = FileBatch(
                id=new_id(IdKind.FILE_BATCH),
                vector_store_id=store_id,
                created_at=now(),
                status="in_progress",
            )
            await tx.insert_file_batch(batch)
            ids = list(dict.fromkeys(file_ids))
            by_id = dict(zip(file_ids, attributes, strict=True))
            await add_files(
                tx, project, store_id, ids, chunking, [by_id[i] for i in ids], batch["id"], param
            )
            if not await tx.batch_files_in_progress(batch["id"]):
                batch = (
                    await tx.update_file_batch(store_id, batch["id"], {"status": "completed"})
                    or batch
                )
            return await batch_view(tx, batch)

    async def get_batch(self, project: str, store_id: str, batch_id: str) -> FileBatchView:
        async with self.store.transaction(durable=False) as tx:
            await self._store(tx, project, store_id)
            batch = await tx.get_file_batch(store_id, batch_id)
            if batch is None:
                raise NotFound("file batch", batch_id)
            return await batch_view(tx, batch)

    async def cancel_batch(self, project: str, store_id: str, batch_id: str) -> FileBatchView:
        """The batch's files not yet indexed are cancelled (their jobs find them so and
        stop); those done stay."""
        async with self.store.transaction() as tx:
            await self._store(tx, project, store_id)
            batch = await tx.get_file_batch(store_id, batch_id)
            if batch is None:
                raise NotFound("file batch", batch_id)
            if batch["status"] == "in_progress":
                for file_id in await tx.batch_files_in_progress(batch_id):
                    await tx.update_vector_store_file(store_id, file_id, {"status": "cancelled"})
                batch = (
                    await tx.update_file_batch(store_id, batch_id, {"status": "cancelled"}) or batch
                )
            return await batch_view(tx, batch)

    # -- search ----------------------------------------------------------------------------

    async def search(
        self, project: str, store_id: str, body: VectorStoreSearch
    ) -> tuple[str | builtins.list[str], builtins.list[SearchHit]]:
        """What was searched for and what was found, best first."""
        if body.rewrite_query:
            raise InvalidRequest(
                "rewrite_query is not supported yet: the query is searched as given.",
                param="rewrite_query",
                code="unsupported_parameter",
            )
        async with self.store.transaction(durable=False) as tx:
            stores = [await self._store(tx, project, store_id)]
        if is_expired(stores[0]):
            raise InvalidRequest(
                f"Vector store '{store_id}' has expired.",
                param="vector_store_id",
                code="vector_store_expired",
            )
        if stale_activity(stores):
            async with self.store.transaction() as tx:
                await mark_active(tx, project, stores)
        queries = [body.query] if isinstance(body.query, str) else list(body.query)
        ranking = body.ranking_options
        request = SearchRequest(
            queries=queries,
            max_results=body.max_num_results,
            score_threshold=(ranking.score_threshold or 0.0) if ranking else 0.0,
            filters=None if body.filters is None else body.filters.model_dump(),
        )
        try:
            hits = await self.searcher.search(project, [store_id], request)
        except EmbeddingError as failed:
            raise UpstreamFailed(failed.message) from failed
        return body.query, hits
