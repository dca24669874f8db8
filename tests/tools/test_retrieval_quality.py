"""Retrieval quality on a small corpus with known answers (`bench/retrieval_corpus.py`):
recall@5 of the hybrid ranking the service uses, against full text alone and vectors alone,
with the bundled embedding model, on a real SQLite store. `bench/` reports the figures; this
keeps the ordering from slipping unnoticed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from bench.retrieval_corpus import DOCUMENTS, QUESTIONS
from threadline.providers.embedders.local_minilm import LocalMiniLM
from threadline.store.sql_store import SqlStore
from threadline.tools.file_search.search import Mode, Searcher, SearchRequest

PROJECT = "default"
STORE = "vs_corpus"


async def _recall(path: Path) -> dict[Mode, float]:
    store = SqlStore(f"sqlite:///{path}")
    await store.migrate()
    await store.open()
    try:
        embedder = LocalMiniLM()
        vectors = await embedder.embed([document.text for document in DOCUMENTS])
        async with store.transaction() as tx:
            await tx.insert_vector_store(
                PROJECT,
                {
                    "id": STORE,
                    "created_at": 0,
                    "name": None,
                    "metadata": {},
                    "expires_after": None,
                    "expires_at": None,
                    "last_active_at": 0,
                },
            )
            for document in DOCUMENTS:
                await tx.insert_file(
                    PROJECT,
                    {
                        "id": document.id,
                        "created_at": 0,
                        "bytes": len(document.text),
                        "filename": f"{document.id}.md",
                        "purpose": "assistants",
                        "status": "processed",
                        "status_details": None,
                        "expires_at": None,
                        "blob_key": f"{PROJECT}/{document.id}",
                    },
                )
            await tx.insert_chunks(
                [
                    {
                        "vector_store_id": STORE,
                        "file_id": document.id,
                        "chunk_index": 0,
                        "text": document.text,
                        "embedding": np.asarray(vector, "<f4").tobytes(),
                        "embedding_model": embedder.model,
                    }
                    for document, vector in zip(DOCUMENTS, vectors, strict=True)
                ]
            )
        searcher = Searcher(store, embedder)
        recall: dict[Mode, float] = {}
        modes: tuple[Mode, ...] = ("hybrid", "text", "vector")
        for mode in modes:
            found = 0
            for question in QUESTIONS:
                request = SearchRequest(queries=[question.text], max_results=5, mode=mode)
                hits = await searcher.search(PROJECT, [STORE], request)
                found += question.answer in [hit["file_id"] for hit in hits]
            recall[mode] = found / len(QUESTIONS)
        return recall
    finally:
        await store.close()


def test_hybrid_recall_is_above_either_ranking_alone(tmp_path: Path) -> None:
    recall = asyncio.run(_recall(tmp_path / "corpus.db"))
    assert recall["hybrid"] > recall["text"], recall
    assert recall["hybrid"] > recall["vector"], recall
    assert recall["hybrid"] >= 0.95, recall
