"""The queries of files, vector stores, their chunks and the jobs queue.

A vector store's counts (`file_counts`, `usage_bytes`) are counted from its files' rows when
read, never kept in its own body: files finish ingesting concurrently, and a counter each of
them updated would be one row every ingestion fought over.

The full-text part of a search is the one place the dialects differ in SQL (FTS5 against a
generated `tsvector`), so it is written out per dialect here; everything else is Core, but
for PostgreSQL's vector search where the server has pgvector (migration 0007): chunks are
written with their `vector` too, and `nearest_chunks` orders them by cosine distance in SQL,
on the HNSW index for the bundled model's vectors. A vector goes to the server as `real[]`,
which pgvector casts to `vector`: asyncpg sends that in binary, exactly, where pgvector's
text form took a microsecond per float to write, and asyncpg has no codec of its own for
`vector` (one registered on every pooled connection would need a hook in the pool).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from threadline.domain.records import (
    FileBatch,
    FileRecord,
    Job,
    Obj,
    Page,
    PageRequest,
    VectorStore,
    VectorStoreFile,
)
from threadline.providers.embedders.minilm_files import DIMENSIONS, MODEL_ID
from threadline.store.compiled import OneOf, Query, param
from threadline.store.drivers import Driver, DuplicateKey
from threadline.store.schema import (
    VECTOR_COLUMN,
    chunks,
    file_batches,
    files,
    jobs,
    vector_store_files,
    vector_stores,
)
from threadline.store.signal import JOB_QUEUED
from threadline.store.sql_common import _ID, _LIMIT, SqlTxBase, _p, _Paging

_PROJECT = _p("p_project", files.c.project)
_STORE_ID = _p("p_vector_store_id", vector_store_files.c.vector_store_id)
_FILE_ID = _p("p_file_id", chunks.c.file_id)
_STORE_IDS = "p_store_ids"

_GET_FILE = Query(sa.select(files.c.body).where(files.c.id == _ID, files.c.project == _PROJECT))
_FILES = Query(
    sa.select(files.c.body).where(
        OneOf(files.c.id, "p_ids", sa.String()), files.c.project == _PROJECT
    )
)
_DELETE_FILE = Query(files.delete().where(files.c.id == _ID, files.c.project == _PROJECT))
# A deleted file leaves every vector store of its project (file ids are unique, so the id
# alone finds them), with its chunks; each store's search copy learns of it by generation.
_STORES_OF_FILE = Query(
    sa.select(vector_store_files.c.vector_store_id).where(vector_store_files.c.id == _ID)
)
_DROP_FILE_EVERYWHERE = Query(vector_store_files.delete().where(vector_store_files.c.id == _ID))
_DROP_FILE_CHUNKS_EVERYWHERE = Query(chunks.delete().where(chunks.c.file_id == _ID))

_VECTOR_STORE = sa.select(vector_stores.c.body).where(
    vector_stores.c.id == _ID, vector_stores.c.project == _PROJECT
)
_GET_VECTOR_STORE = Query(_VECTOR_STORE)
_VECTOR_STORES = Query(
    sa.select(vector_stores.c.body).where(
        OneOf(vector_stores.c.id, "p_ids", sa.String()), vector_stores.c.project == _PROJECT
    )
)
_DELETE_VECTOR_STORE = Query(
    vector_stores.delete().where(vector_stores.c.id == _ID, vector_stores.c.project == _PROJECT)
)
_DELETE_STORE_CONTENTS = [
    Query(table.delete().where(table.c.vector_store_id == _STORE_ID))
    for table in (vector_store_files, file_batches, chunks)
]
_BUMP_GENERATION = Query(
    vector_stores.update()
    .where(OneOf(vector_stores.c.id, "p_ids", sa.String()))
    .values(index_generation=vector_stores.c.index_generation + 1)
)
_INDEX_STATE = Query(
    sa.select(vector_stores.c.index_generation).where(vector_stores.c.id == _STORE_ID)
)
_MAX_CHUNK_SEQ = Query(
    sa.select(sa.func.coalesce(sa.func.max(chunks.c.seq), 0)).where(
        chunks.c.vector_store_id == _STORE_ID
    )
)

_FILE_COUNTS = Query(
    sa.select(
        vector_store_files.c.status,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(vector_store_files.c.usage_bytes), 0),
    )
    .where(vector_store_files.c.vector_store_id == _STORE_ID)
    .group_by(vector_store_files.c.status)
)
_BATCH_ID = _p("p_batch_id", vector_store_files.c.batch_id)
_BATCH_COUNTS = Query(
    sa.select(vector_store_files.c.status, sa.func.count(), sa.literal(0))
    .where(vector_store_files.c.batch_id == _BATCH_ID)
    .group_by(vector_store_files.c.status)
)
_GET_STORE_FILE = Query(
    sa.select(vector_store_files.c.body).where(
        vector_store_files.c.vector_store_id == _STORE_ID, vector_store_files.c.id == _ID
    )
)
_STORE_FILES_OF = Query(
    sa.select(vector_store_files.c.body)
    .where(OneOf(vector_store_files.c.vector_store_id, _STORE_IDS, sa.String()))
    .order_by(vector_store_files.c.seq)
)
_STORE_FILES_BY_ID = Query(
    sa.select(vector_store_files.c.body).where(OneOf(vector_store_files.c.id, "p_ids", sa.String()))
)
_DELETE_STORE_FILE = Query(
    vector_store_files.delete().where(
        vector_store_files.c.vector_store_id == _STORE_ID, vector_store_files.c.id == _ID
    )
)
_DELETE_FILE_CHUNKS = Query(
    chunks.delete().where(chunks.c.vector_store_id == _STORE_ID, chunks.c.file_id == _FILE_ID)
)
_BATCH_FILES_IN_PROGRESS = Query(
    sa.select(vector_store_files.c.id).where(
        vector_store_files.c.batch_id == _BATCH_ID,
        vector_store_files.c.status == "in_progress",
    )
)
_GET_BATCH = Query(
    sa.select(file_batches.c.body).where(
        file_batches.c.id == _ID, file_batches.c.vector_store_id == _STORE_ID
    )
)
_CHUNK_VECTORS = Query(
    sa.select(chunks.c.seq, chunks.c.file_id, chunks.c.embedding)
    .where(
        chunks.c.vector_store_id == _STORE_ID,
        chunks.c.seq > param("p_after", sa.BigInteger()),
        chunks.c.embedding_model == _p("p_model", chunks.c.embedding_model),
    )
    .order_by(chunks.c.seq)
)
_CHUNK_TEXTS = Query(
    sa.select(chunks.c.seq, chunks.c.vector_store_id, chunks.c.file_id, chunks.c.text).where(
        OneOf(chunks.c.seq, "p_ids", sa.BigInteger())
    )
)
_STORES_WITH_OTHER_MODEL = Query(
    sa.select(chunks.c.vector_store_id)
    .where(chunks.c.embedding_model != _p("p_model", chunks.c.embedding_model))
    .distinct()
)
_CHUNKS_WITH_OTHER_MODEL = Query(
    sa.select(chunks.c.seq, chunks.c.text)
    .where(
        chunks.c.embedding_model != _p("p_model", chunks.c.embedding_model),
        chunks.c.seq > param("p_after", sa.BigInteger()),
    )
    .order_by(chunks.c.seq)
    .limit(_LIMIT)
)
_SET_EMBEDDING = Query(
    chunks.update()
    .where(chunks.c.seq == param("p_seq", sa.BigInteger()))
    .values(
        embedding=_p("p_embedding", chunks.c.embedding),
        embedding_model=_p("p_model", chunks.c.embedding_model),
    )
)

# Full text: the best `p_limit` chunks of the stores for a query already reduced to words
# (`p_match`), best first. bm25() is lower for better matches; ts_rank_cd higher.
# SQLite: the index's best matches first, looked up in `chunks` only for those (a lookup
# for every match cost more than ranking them); the caller keeps those of its stores. When
# other stores crowd them out, the same ranking within the stores, their ids matched inside
# the index (`p_match` then names them).
_SQLITE_TEXT_SEARCH = Query(
    sa.text(
        "SELECT c.seq, c.file_id, c.vector_store_id FROM "
        "(SELECT rowid AS hit, bm25(chunks_fts) AS score FROM chunks_fts "
        "WHERE chunks_fts MATCH :p_match ORDER BY score LIMIT :p_limit) AS best "
        "CROSS JOIN chunks AS c ON c.seq = best.hit ORDER BY best.score"
    ).bindparams(param("p_match", sa.String()), param("p_limit", sa.Integer()))
)
_POSTGRES_TEXT_SEARCH = Query(
    sa.text(
        "SELECT seq, file_id FROM chunks, to_tsquery('english', :p_match) AS q "
        "WHERE tsv @@ q AND vector_store_id = ANY(:p_store_ids) "
        "ORDER BY ts_rank_cd(tsv, q) DESC LIMIT :p_limit"
    ).bindparams(
        param("p_match", sa.String()),
        param(_STORE_IDS, ARRAY(sa.String())),
        param("p_limit", sa.Integer()),
    )
)

# -- vectors in PostgreSQL with pgvector (migration 0007) --------------------------------


@dataclass(frozen=True)
class VectorColumn:
    """What the database offers for searching vectors in SQL, found once per store."""

    # `chunks.embedding_vec` exists: pgvector is installed and 0007 added it.
    present: bool = False
    # pgvector 0.8 or newer: a filtered HNSW scan goes on until it has found enough rows.
    iterative_scan: bool = False


NO_VECTOR_COLUMN = VectorColumn()

_VECTOR_COLUMN = Query(
    sa.text(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
        "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = "
        f"current_schema() AND table_name = 'chunks' AND column_name = '{VECTOR_COLUMN}')"
    )
)


async def detect_vector_column(db: Driver) -> VectorColumn:
    """On PostgreSQL; whether chunks carry a `vector` column, and what pgvector can do."""
    [(version, present)] = await db.fetch(_VECTOR_COLUMN)
    if not present or version is None:
        return NO_VECTOR_COLUMN
    numbers = tuple(int(part) for part in str(version).split(".")[:2] if part.isdigit())
    return VectorColumn(present=True, iterative_scan=numbers >= (0, 8))


def vector_floats(embedding: bytes) -> list[float]:
    """Float32 little-endian bytes as the floats asyncpg sends as `real[]` (binary, exact),
    which pgvector casts to `vector`."""
    return cast("list[float]", np.frombuffer(embedding, "<f4").tolist())


# The parameters of these statements are cast in their SQL and go to asyncpg as they are: an
# `ARRAY` type would pass each of a batch's hundreds of thousands of floats through
# SQLAlchemy's item processing in Python first (it tripled an insert's time).
_AS_CAST = sa.types.NullType()
# Rows of chunks in one statement whatever their number: each column an array, the vectors
# all in one `real[]` (`p_floats`), row i's from offset `p_offsets[i]`, `p_dims[i]` long.
_INSERT_CHUNKS_WITH_VECTORS = Query(
    sa.text(
        "INSERT INTO chunks (vector_store_id, file_id, chunk_index, text, embedding, "
        f"embedding_model, {VECTOR_COLUMN}) "
        "SELECT s, f, i, t, e, m, CAST((CAST(:p_floats AS real[]))[o + 1 : o + d] AS vector) "
        "FROM unnest(CAST(:p_stores AS varchar[]), CAST(:p_files AS varchar[]), "
        "CAST(:p_indexes AS integer[]), CAST(:p_texts AS text[]), CAST(:p_embeddings AS bytea[]), "
        "CAST(:p_models AS varchar[]), CAST(:p_offsets AS integer[]), "
        "CAST(:p_dims AS integer[])) WITH ORDINALITY AS r(s, f, i, t, e, m, o, d, n) ORDER BY n"
    ).bindparams(
        param("p_floats", _AS_CAST),
        param("p_stores", _AS_CAST),
        param("p_files", _AS_CAST),
        param("p_indexes", _AS_CAST),
        param("p_texts", _AS_CAST),
        param("p_embeddings", _AS_CAST),
        param("p_models", _AS_CAST),
        param("p_offsets", _AS_CAST),
        param("p_dims", _AS_CAST),
    )
)
_SET_EMBEDDING_WITH_VECTOR = Query(
    sa.text(
        "UPDATE chunks SET embedding = :p_embedding, embedding_model = :p_model, "
        f"{VECTOR_COLUMN} = CAST(CAST(:p_vector AS real[]) AS vector) WHERE seq = :p_seq"
    ).bindparams(
        param("p_embedding", _AS_CAST),
        param("p_model", _AS_CAST),
        param("p_vector", _AS_CAST),
        param("p_seq", _AS_CAST),
    )
)
# `SET LOCAL` for the nearest-neighbour query that follows in the transaction: how many
# candidates HNSW keeps (more finds the true nearest more often); a plan made for the stores
# and files asked, never a generic one (for a small store among large ones the planner
# compares its rows exactly rather than walking the whole index past other stores' rows);
# and, on pgvector 0.8+, to go on scanning while the stores' or files' filter leaves too few.
_HNSW_SETTINGS = {
    iterative: Query(
        sa.text(
            "SELECT set_config('hnsw.ef_search', CAST(:p_ef AS text), true), "
            "set_config('plan_cache_mode', 'force_custom_plan', true)"
            + (", set_config('hnsw.iterative_scan', 'strict_order', true)" if iterative else "")
        ).bindparams(param("p_ef", _AS_CAST))
    )
    for iterative in (False, True)
}
# HNSW keeps at most this many candidates (pgvector's limit for `hnsw.ef_search`).
_MAX_EF_SEARCH = 1000


@functools.cache
def nearest_query(indexed: bool, by_file: bool) -> Query:
    """The chunks of the stores (`p_store_ids`), of the files `p_file_ids` if `by_file`,
    whose vectors of the model are nearest the query's (`p_vector`): (cosine distance, seq),
    nearest first. `indexed`: the bundled model's vectors, ordered by the expression the
    HNSW index of 0007 holds, under the predicate it has, both written as it wrote them so
    the planner can match them; otherwise another model's, of `p_model`, compared exactly."""
    if indexed:
        distance = (
            f"{VECTOR_COLUMN}::vector({DIMENSIONS}) "
            f"<=> CAST(CAST(:p_vector AS real[]) AS vector({DIMENSIONS}))"
        )
        model = "embedding_model = '" + MODEL_ID.replace("'", "''") + "'"
    else:
        distance = f"{VECTOR_COLUMN} <=> CAST(CAST(:p_vector AS real[]) AS vector)"
        model = "embedding_model = :p_model"
    files_filter = " AND file_id = ANY(CAST(:p_file_ids AS varchar[]))" if by_file else ""
    statement = sa.text(
        f"SELECT {distance} AS distance, seq FROM chunks WHERE {model} "
        f"AND vector_store_id = ANY(CAST(:{_STORE_IDS} AS varchar[])){files_filter} "
        "ORDER BY distance LIMIT :p_limit"
    )
    params = [
        param("p_vector", _AS_CAST),
        param(_STORE_IDS, _AS_CAST),
        param("p_limit", _AS_CAST),
    ]
    if not indexed:
        params.append(param("p_model", _AS_CAST))
    if by_file:
        params.append(param("p_file_ids", _AS_CAST))
    return Query(statement.bindparams(*params))


_OWNER = _p("p_owner", jobs.c.lease_owner)
_LEASE_UNTIL = _p("p_lease_until", jobs.c.lease_until)
_NEXT_JOBS = Query(
    sa.select(jobs.c.id, jobs.c.kind, jobs.c.body, jobs.c.attempts)
    .where(jobs.c.lease_owner.is_(None))
    .order_by(jobs.c.seq)
    .limit(_LIMIT)
    .with_for_update(skip_locked=True)
)
_LEASE_JOBS = Query(
    jobs.update()
    .where(OneOf(jobs.c.id, "p_ids", sa.String()))
    .values(lease_owner=_OWNER, lease_until=_LEASE_UNTIL, attempts=jobs.c.attempts + 1)
)
_RENEW_JOBS = Query(
    jobs.update()
    .where(OneOf(jobs.c.id, "p_ids", sa.String()), jobs.c.lease_owner == _OWNER)
    .values(lease_until=_LEASE_UNTIL)
)
_FINISH_JOB = Query(jobs.delete().where(jobs.c.id == _ID, jobs.c.lease_owner == _OWNER))
_HAND_BACK_JOB = Query(
    jobs.update()
    .where(jobs.c.id == _ID, jobs.c.lease_owner == _OWNER)
    .values(lease_owner=None, lease_until=None)
)
_LAPSED_JOBS = Query(
    jobs.update()
    .where(
        jobs.c.lease_owner.is_not(None),
        jobs.c.lease_until < _p("p_now", jobs.c.lease_until),
    )
    .values(lease_owner=None, lease_until=None)
)
_ALL_JOBS_FREE = Query(jobs.update().values(lease_owner=None, lease_until=None))

_FILE_PAGES = _Paging(files, "project")
_PURPOSE_FILE_PAGES = _Paging(files, "project", "purpose")
_VECTOR_STORE_PAGES = _Paging(vector_stores, "project")
_STORE_FILE_PAGES = _Paging(vector_store_files, "vector_store_id")
_STATUS_STORE_FILE_PAGES = _Paging(vector_store_files, "vector_store_id", "status")
_BATCH_FILE_PAGES = _Paging(vector_store_files, "vector_store_id", "batch_id")
_STATUS_BATCH_FILE_PAGES = _Paging(vector_store_files, "vector_store_id", "batch_id", "status")

STATUSES = ("in_progress", "completed", "failed", "cancelled")


class FileQueries(SqlTxBase):
    # Set by the store on PostgreSQL, from `detect_vector_column`.
    vector_column: VectorColumn = NO_VECTOR_COLUMN

    # -- files -----------------------------------------------------------------------------

    async def insert_file(self, project: str, file: FileRecord) -> None:
        row = {"id": file["id"], "project": project, "purpose": file["purpose"], "body": file}
        await self._insert_rows(files, [row])

    async def get_file(self, project: str, file_id: str) -> FileRecord | None:
        found = await self._one_body(_GET_FILE, p_id=file_id, p_project=project)
        return cast("FileRecord | None", found)

    async def get_files(self, project: str, file_ids: Sequence[str]) -> list[FileRecord]:
        found = await self._bodies(_FILES, p_ids=list(file_ids), p_project=project)
        return cast("list[FileRecord]", found)

    async def page_files(
        self, project: str, page: PageRequest, purpose: str | None = None
    ) -> Page[FileRecord]:
        if purpose is None:
            found = await self._page(_FILE_PAGES, page, project=project)
        else:
            found = await self._page(_PURPOSE_FILE_PAGES, page, project=project, purpose=purpose)
        return cast("Page[FileRecord]", found)

    async def delete_file(self, project: str, file_id: str) -> FileRecord | None:
        """The file's row, its place in every vector store and its chunks; returns what was
        deleted (its blob is the caller's to remove, after the commit)."""
        file = await self.get_file(project, file_id)
        if file is None or not await self.db.execute(
            _DELETE_FILE, {"p_id": file_id, "p_project": project}
        ):
            return None
        stores = [str(row[0]) for row in await self.db.fetch(_STORES_OF_FILE, {"p_id": file_id})]
        await self.db.execute(_DROP_FILE_EVERYWHERE, {"p_id": file_id})
        await self.db.execute(_DROP_FILE_CHUNKS_EVERYWHERE, {"p_id": file_id})
        if stores:
            await self.db.execute(_BUMP_GENERATION, {"p_ids": stores})
        return file

    # -- vector stores ---------------------------------------------------------------------

    async def insert_vector_store(self, project: str, store: VectorStore) -> None:
        row = {
            "id": store["id"],
            "project": project,
            "expires_at": store["expires_at"],
            "body": store,
        }
        await self._insert_rows(vector_stores, [row])

    async def get_vector_store(self, project: str, store_id: str) -> VectorStore | None:
        found = await self._one_body(_GET_VECTOR_STORE, p_id=store_id, p_project=project)
        return cast("VectorStore | None", found)

    async def get_vector_stores(self, project: str, store_ids: Sequence[str]) -> list[VectorStore]:
        found = await self._bodies(_VECTOR_STORES, p_ids=list(store_ids), p_project=project)
        return cast("list[VectorStore]", found)

    async def update_vector_store(
        self, project: str, store_id: str, changes: Obj
    ) -> VectorStore | None:
        columns = {"expires_at": changes["expires_at"]} if "expires_at" in changes else None
        found = await self._update_body(
            vector_stores, changes, {"id": store_id, "project": project}, columns
        )
        return cast("VectorStore | None", found)

    async def delete_vector_store(self, project: str, store_id: str) -> bool:
        if not await self.db.execute(
            _DELETE_VECTOR_STORE, {"p_id": store_id, "p_project": project}
        ):
            return False
        for query in _DELETE_STORE_CONTENTS:
            await self.db.execute(query, {"p_vector_store_id": store_id})
        return True

    async def page_vector_stores(self, project: str, page: PageRequest) -> Page[VectorStore]:
        found = await self._page(_VECTOR_STORE_PAGES, page, project=project)
        return cast("Page[VectorStore]", found)

    async def file_counts(self, store_id: str) -> tuple[dict[str, int], int]:
        """Files of the store by status, and the bytes its indexed files take."""
        rows = await self.db.fetch(_FILE_COUNTS, {"p_vector_store_id": store_id})
        return {str(row[0]): int(row[1]) for row in rows}, sum(int(row[2]) for row in rows)

    async def batch_counts(self, batch_id: str) -> dict[str, int]:
        rows = await self.db.fetch(_BATCH_COUNTS, {"p_batch_id": batch_id})
        return {str(row[0]): int(row[1]) for row in rows}

    # -- a vector store's files ------------------------------------------------------------

    async def insert_vector_store_file(self, file: VectorStoreFile) -> bool:
        """False when the file is in the store already (the pair is unique)."""
        row = {
            "id": file["id"],
            "vector_store_id": file["vector_store_id"],
            "batch_id": file["batch_id"],
            "status": file["status"],
            "usage_bytes": file["usage_bytes"],
            "body": file,
        }
        try:
            await self._insert_rows(vector_store_files, [row])
        except DuplicateKey:
            return False
        return True

    async def get_vector_store_file(self, store_id: str, file_id: str) -> VectorStoreFile | None:
        found = await self._one_body(_GET_STORE_FILE, p_vector_store_id=store_id, p_id=file_id)
        return cast("VectorStoreFile | None", found)

    async def files_of_vector_stores(self, store_ids: Sequence[str]) -> list[VectorStoreFile]:
        found = await self._bodies(_STORE_FILES_OF, p_store_ids=list(store_ids))
        return cast("list[VectorStoreFile]", found)

    async def vector_store_files_named(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[VectorStoreFile]:
        """The store files of these (vector store id, file id) pairs that exist."""
        if not pairs:
            return []
        wanted = set(pairs)
        found = await self._bodies(_STORE_FILES_BY_ID, p_ids=list({file for _, file in pairs}))
        return cast(
            "list[VectorStoreFile]",
            [body for body in found if (body["vector_store_id"], body["id"]) in wanted],
        )

    async def update_vector_store_file(
        self, store_id: str, file_id: str, changes: Obj
    ) -> VectorStoreFile | None:
        columns: dict[str, Any] = {
            name: changes[name] for name in ("status", "usage_bytes") if name in changes
        }
        found = await self._update_body(
            vector_store_files,
            changes,
            {"vector_store_id": store_id, "id": file_id},
            columns or None,
        )
        return cast("VectorStoreFile | None", found)

    async def delete_vector_store_file(self, store_id: str, file_id: str) -> bool:
        params = {"p_vector_store_id": store_id, "p_id": file_id}
        if not await self.db.execute(_DELETE_STORE_FILE, params):
            return False
        await self.delete_chunks(store_id, file_id)
        return True

    async def page_vector_store_files(
        self,
        store_id: str,
        page: PageRequest,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> Page[VectorStoreFile]:
        scope: dict[str, Any] = {"vector_store_id": store_id}
        if batch_id is not None:
            scope["batch_id"] = batch_id
        if status is not None:
            scope["status"] = status
        paging = {
            (False, False): _STORE_FILE_PAGES,
            (False, True): _STATUS_STORE_FILE_PAGES,
            (True, False): _BATCH_FILE_PAGES,
            (True, True): _STATUS_BATCH_FILE_PAGES,
        }[(batch_id is not None, status is not None)]
        return cast("Page[VectorStoreFile]", await self._page(paging, page, **scope))

    # -- batches ---------------------------------------------------------------------------

    async def insert_file_batch(self, batch: FileBatch) -> None:
        row = {"id": batch["id"], "vector_store_id": batch["vector_store_id"], "body": batch}
        await self._insert_rows(file_batches, [row])

    async def get_file_batch(self, store_id: str, batch_id: str) -> FileBatch | None:
        found = await self._one_body(_GET_BATCH, p_id=batch_id, p_vector_store_id=store_id)
        return cast("FileBatch | None", found)

    async def update_file_batch(
        self, store_id: str, batch_id: str, changes: Obj
    ) -> FileBatch | None:
        found = await self._update_body(
            file_batches, changes, {"id": batch_id, "vector_store_id": store_id}
        )
        return cast("FileBatch | None", found)

    async def batch_files_in_progress(self, batch_id: str) -> list[str]:
        rows = await self.db.fetch(_BATCH_FILES_IN_PROGRESS, {"p_batch_id": batch_id})
        return [str(row[0]) for row in rows]

    # -- chunks ----------------------------------------------------------------------------

    async def insert_chunks(self, rows: list[dict[str, Any]]) -> None:
        """Rows of `vector_store_id, file_id, chunk_index, text, embedding, embedding_model`."""
        if not rows:
            return
        if not self.vector_column.present:
            await self._insert_rows(chunks, rows)
            return
        dims = [len(row["embedding"]) // 4 for row in rows]
        await self.db.execute(
            _INSERT_CHUNKS_WITH_VECTORS,
            {
                "p_floats": vector_floats(b"".join(row["embedding"] for row in rows)),
                "p_stores": [row["vector_store_id"] for row in rows],
                "p_files": [row["file_id"] for row in rows],
                "p_indexes": [row["chunk_index"] for row in rows],
                "p_texts": [row["text"] for row in rows],
                "p_embeddings": [row["embedding"] for row in rows],
                "p_models": [row["embedding_model"] for row in rows],
                "p_offsets": list(itertools.accumulate(dims, initial=0))[:-1],
                "p_dims": dims,
            },
        )

    async def delete_chunks(self, store_id: str, file_id: str) -> None:
        params = {"p_vector_store_id": store_id, "p_file_id": file_id}
        if await self.db.execute(_DELETE_FILE_CHUNKS, params):
            await self.db.execute(_BUMP_GENERATION, {"p_ids": [store_id]})

    async def index_state(self, store_id: str) -> tuple[int, int]:
        """The store's chunk generation and its newest chunk's `seq`: a copy of its vectors
        holding both is current."""
        rows = await self.db.fetch(_INDEX_STATE, {"p_vector_store_id": store_id})
        generation = int(rows[0][0]) if rows else 0
        newest = await self.db.fetch(_MAX_CHUNK_SEQ, {"p_vector_store_id": store_id})
        return generation, int(newest[0][0])

    async def chunk_vectors(
        self, store_id: str, model: str, after_seq: int
    ) -> list[tuple[int, str, bytes]]:
        rows = await self.db.fetch(
            _CHUNK_VECTORS, {"p_vector_store_id": store_id, "p_after": after_seq, "p_model": model}
        )
        return [(int(row[0]), str(row[1]), bytes(row[2])) for row in rows]

    async def chunk_texts(self, seqs: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """By seq: the chunk's vector store, file and text."""
        rows = await self.db.fetch(_CHUNK_TEXTS, {"p_ids": list(seqs)})
        return {int(row[0]): (str(row[1]), str(row[2]), str(row[3])) for row in rows}

    async def text_search(
        self, store_ids: Sequence[str], words: Sequence[str], limit: int
    ) -> list[tuple[int, str]]:
        """The chunks that best match any of `words` (seq, file id), best first."""
        if not words or not store_ids:
            return []
        if self.db.holds_row_locks:
            params = {"p_match": " | ".join(words), _STORE_IDS: list(store_ids), "p_limit": limit}
            rows = await self.db.fetch(_POSTGRES_TEXT_SEARCH, params)
            return [(int(row[0]), str(row[1])) for row in rows]
        # The words match in the text: a store's id, indexed too, is `vs` and a random
        # token, and `vs` is never searched for (`search.query_words`). Named as the text
        # column's, they cost a quarter more.
        either = " OR ".join(f'"{word}"' for word in words)
        wanted = set(store_ids)
        rows = await self.db.fetch(_SQLITE_TEXT_SEARCH, {"p_match": either, "p_limit": limit})
        found = [(int(row[0]), str(row[1])) for row in rows if row[2] in wanted]
        if len(found) == len(rows) or len(rows) < limit:
            return found  # none crowded out, or every match seen
        stores = " OR ".join(f'"{store_id}"' for store_id in store_ids)
        within = f"({either}) AND vector_store_id : ({stores})"
        rows = await self.db.fetch(_SQLITE_TEXT_SEARCH, {"p_match": within, "p_limit": limit})
        return [(int(row[0]), str(row[1])) for row in rows]

    async def stores_with_other_embeddings(self, model: str) -> list[str]:
        rows = await self.db.fetch(_STORES_WITH_OTHER_MODEL, {"p_model": model})
        return [str(row[0]) for row in rows]

    async def chunks_with_other_embeddings(
        self, model: str, after_seq: int, limit: int
    ) -> list[tuple[int, str]]:
        rows = await self.db.fetch(
            _CHUNKS_WITH_OTHER_MODEL, {"p_model": model, "p_after": after_seq, "p_limit": limit}
        )
        return [(int(row[0]), str(row[1])) for row in rows]

    async def set_embedding(self, seq: int, embedding: bytes, model: str) -> None:
        params: dict[str, Any] = {"p_seq": seq, "p_embedding": embedding, "p_model": model}
        if self.vector_column.present:
            params["p_vector"] = vector_floats(embedding)
            await self.db.execute(_SET_EMBEDDING_WITH_VECTOR, params)
            return
        await self.db.execute(_SET_EMBEDDING, params)

    @property
    def supports_ann(self) -> bool:
        """Whether `nearest_chunks` can search the vectors in the database."""
        return self.vector_column.present

    async def nearest_chunks(
        self,
        store_ids: Sequence[str],
        model: str,
        query_vector: bytes,
        limit: int,
        allowed_file_ids: Collection[str] | None = None,
    ) -> list[tuple[float, int]]:
        """The `limit` chunks of the stores (of those files, if given) whose vectors of
        `model` are most like `query_vector` (float32 little-endian, unit length):
        (similarity, seq), best first, ties by seq."""
        if not self.vector_column.present:
            raise RuntimeError("this database has no vector column: use chunk_vectors")
        if not store_ids or limit <= 0 or (allowed_file_ids is not None and not allowed_file_ids):
            return []
        indexed = model == MODEL_ID and len(query_vector) == DIMENSIONS * 4
        params: dict[str, Any] = {
            "p_vector": vector_floats(query_vector),
            _STORE_IDS: list(store_ids),
            "p_limit": limit,
        }
        if indexed:
            ef_search = min(_MAX_EF_SEARCH, max(40, limit * 2))
            settings = _HNSW_SETTINGS[self.vector_column.iterative_scan]
            await self.db.fetch(settings, {"p_ef": str(ef_search)})
        else:
            params["p_model"] = model
        if allowed_file_ids is not None:
            params["p_file_ids"] = list(allowed_file_ids)
        rows = await self.db.fetch(nearest_query(indexed, allowed_file_ids is not None), params)
        found = [(1.0 - float(row[0]), int(row[1])) for row in rows if row[0] is not None]
        found.sort(key=lambda item: (-item[0], item[1]))
        return found

    async def bump_index_generation(self, store_ids: Sequence[str]) -> None:
        if store_ids:
            await self.db.execute(_BUMP_GENERATION, {"p_ids": list(store_ids)})

    # -- jobs ------------------------------------------------------------------------------

    async def insert_job(self, job_id: str, kind: str, body: Obj) -> None:
        await self._insert_rows(jobs, [{"id": job_id, "kind": kind, "body": body}])
        self.wakes.add(JOB_QUEUED)

    async def claim_next_jobs(self, owner: str, lease_until: float, limit: int) -> list[Job]:
        rows = await self.db.fetch(_NEXT_JOBS, {"p_limit": limit})
        claimed = [
            Job(id=str(row[0]), kind=str(row[1]), body=dict(row[2]), attempts=int(row[3]) + 1)
            for row in rows
        ]
        if claimed:
            await self.db.execute(
                _LEASE_JOBS,
                {
                    "p_ids": [job["id"] for job in claimed],
                    "p_owner": owner,
                    "p_lease_until": lease_until,
                },
            )
        return claimed

    async def renew_job_leases(self, owner: str, job_ids: list[str], lease_until: float) -> None:
        if job_ids:
            await self.db.execute(
                _RENEW_JOBS, {"p_ids": job_ids, "p_owner": owner, "p_lease_until": lease_until}
            )

    async def finish_job(self, job_id: str, owner: str) -> bool:
        """Done: the job leaves the queue, if this owner still holds it."""
        return bool(await self.db.execute(_FINISH_JOB, {"p_id": job_id, "p_owner": owner}))

    async def hand_back_job(self, job_id: str, owner: str) -> None:
        if await self.db.execute(_HAND_BACK_JOB, {"p_id": job_id, "p_owner": owner}):
            self.wakes.add(JOB_QUEUED)

    async def free_lapsed_jobs(self, now: float | None) -> int:
        """Jobs whose worker's lease lapsed go back to the queue; `None` frees every job
        (a SQLite file at start, where the embedded worker is the only one)."""
        if now is None:
            freed = await self.db.execute(_ALL_JOBS_FREE)
        else:
            freed = await self.db.execute(_LAPSED_JOBS, {"p_now": now})
        if freed:
            self.wakes.add(JOB_QUEUED)
        return freed
