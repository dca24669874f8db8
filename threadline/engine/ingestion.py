"""Ingestion: one file of a vector store read, parsed, chunked, embedded and indexed.

The work before the last write (parsing, embedding) changes nothing stored, so a worker
that dies in it leaves the job to be taken over and done again from the start. The last
write stores every chunk, completes the file and takes the job off the queue in one
transaction that commits only while this worker still holds the job's lease: a file is
indexed once, whichever worker finishes it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from threadline.domain.records import Job, LastError, Obj, VectorStoreFile
from threadline.providers.embedders import minilm_pieces
from threadline.providers.embedders.base import (
    Embedder,
    EmbeddingError,
    Vectors,
    supports_spans,
)
from threadline.store.base import Store, StoreTx
from threadline.store.blobs import BlobMissing, BlobStore
from threadline.tools.file_search.chunk import chunk
from threadline.tools.file_search.parse import ParseError, parse

log = logging.getLogger(__name__)

# A file whose ingestion has killed its worker this many times is failed, not retried.
MAX_ATTEMPTS = 3
EMBED_BATCH = 64


class LostLease(Exception):
    """Another worker took the job over; this one's work is dropped."""


@dataclass(frozen=True)
class Indexed:
    rows: list[dict[str, Any]]
    usage_bytes: int
    note: str | None


class Ingestion:
    def __init__(self, store: Store, blobs: BlobStore, embedder: Embedder, owner: str):
        self.store = store
        self.blobs = blobs
        self.embedder = embedder
        self.owner = owner

    async def run(self, job: Job) -> None:
        body = job["body"]
        project, store_id, file_id = body["project"], body["vector_store_id"], body["file_id"]
        async with self.store.transaction(durable=False) as tx:
            entry = await tx.get_vector_store_file(store_id, file_id)
            file = await tx.get_file(project, file_id)
        if entry is None or entry["status"] != "in_progress" or file is None:
            # Deleted or cancelled meanwhile: nothing to index.
            await self._finish(job, store_id, file_id, None)
            return
        if job["attempts"] > MAX_ATTEMPTS:
            error = LastError(
                code="server_error",
                message=f"Indexing the file failed {MAX_ATTEMPTS} times; it was given up.",
            )
            await self._finish(job, store_id, file_id, error)
            return
        try:
            data = await self.blobs.read(file["blob_key"])
            indexed = await self._index(store_id, file_id, file["filename"], data, entry)
        except ParseError as refused:
            await self._finish(
                job, store_id, file_id, LastError(code="invalid_file", message=str(refused))
            )
            return
        except EmbeddingError as failed:
            log.warning("file %s: embedding failed: %s", file_id, failed.detail)
            await self._finish(
                job, store_id, file_id, LastError(code="server_error", message=failed.message)
            )
            return
        except BlobMissing:
            error = LastError(code="server_error", message="The file's bytes are missing.")
            await self._finish(job, store_id, file_id, error)
            return
        await self._finish(job, store_id, file_id, None, indexed)

    async def _index(
        self, store_id: str, file_id: str, filename: str, data: bytes, entry: VectorStoreFile
    ) -> Indexed:
        document = await asyncio.to_thread(parse, filename, data)
        static = entry["chunking_strategy"]["static"]
        # The text tokenized once: the chunker cuts it at these pieces, and the bundled
        # embedder reads the same pieces rather than tokenizing the text again.
        pieces = await asyncio.to_thread(minilm_pieces.read, document.text)
        chunks = await asyncio.to_thread(
            chunk,
            document.text,
            static["max_chunk_size_tokens"],
            static["chunk_overlap_tokens"],
            pieces=pieces,
        )
        texts = [piece.text for piece in chunks]
        if not texts:
            vectors: Vectors = np.zeros((0, 0), np.float32)
        elif supports_spans(self.embedder):
            # Each word piece embedded once, however much the chunks overlap.
            spans = [(piece.start, piece.end) for piece in chunks]
            vectors = await self.embedder.embed_spans(document.text, spans, pieces=pieces)
        else:
            batches = [
                await self.embedder.embed(texts[start : start + EMBED_BATCH])
                for start in range(0, len(texts), EMBED_BATCH)
            ]
            vectors = np.vstack(batches)
        rows = []
        usage = 0
        for index, text in enumerate(texts):
            embedding = np.asarray(vectors[index], "<f4")
            blob = embedding.tobytes()
            usage += len(text.encode()) + len(blob)
            rows.append(
                {
                    "vector_store_id": store_id,
                    "file_id": file_id,
                    "chunk_index": index,
                    "text": text,
                    "embedding": blob,
                    "embedding_model": self.embedder.model,
                }
            )
        return Indexed(rows=rows, usage_bytes=usage, note=document.note)

    async def _finish(
        self,
        job: Job,
        store_id: str,
        file_id: str,
        error: LastError | None,
        indexed: Indexed | None = None,
    ) -> None:
        try:
            async with self.store.transaction() as tx:
                if not await tx.finish_job(job["id"], self.owner):
                    raise LostLease(job["id"])
                await _settle(tx, store_id, file_id, error, indexed)
        except LostLease:
            log.info("job %s: taken over by another worker; its work here is dropped", job["id"])


async def _settle(
    tx: StoreTx, store_id: str, file_id: str, error: LastError | None, indexed: Indexed | None
) -> None:
    entry = await tx.get_vector_store_file(store_id, file_id)
    if entry is None or entry["status"] != "in_progress":
        return
    changes: Obj
    if indexed is not None:
        await tx.delete_chunks(store_id, file_id)
        await tx.insert_chunks(indexed.rows)
        changes = {"status": "completed", "usage_bytes": indexed.usage_bytes, "note": indexed.note}
    elif error is not None:
        changes = {"status": "failed", "last_error": error}
    else:
        return
    await tx.update_vector_store_file(store_id, file_id, changes)
    batch_id = entry["batch_id"]
    if batch_id is not None and not await tx.batch_files_in_progress(batch_id):
        batch = await tx.get_file_batch(store_id, batch_id)
        if batch is not None and batch["status"] == "in_progress":
            await tx.update_file_batch(store_id, batch_id, {"status": "completed"})
