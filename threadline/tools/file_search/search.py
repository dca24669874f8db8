"""Hybrid search over vector stores: full text and vector similarity, fused by rank.

Full text finds the chunks that share the query's words (SQLite FTS5 with bm25, PostgreSQL
`tsvector` with ts_rank_cd); vector similarity finds those that mean the same in other
words (the embedder's unit vectors, scored by dot product). Each ranks its own best; the
two rankings are fused by weighted reciprocal rank fusion (a chunk scores weight/(k + rank)
in each list it is in), so neither's scale has to be made comparable with the other's. A result's
`score` is that sum divided by the most any chunk could get (first in every list), so it
lies in (0, 1] and `score_threshold` means the same whatever the number of queries.

Where the database can search vectors itself (PostgreSQL with pgvector: `StoreTx.
supports_ann`), it does: `nearest_chunks` ranks them on an HNSW index, and no vector is
loaded into any API or worker process, however many there are and however large the stores.
Elsewhere vectors are searched exactly, in process: a store's vectors are loaded once into a
numpy matrix and kept, then brought up to date from the store's chunk generation and newest
chunk (`StoreTx.index_state`), so a search costs one matrix-vector product. The SQLite build
the service runs on cannot load extensions (no `sqlite-vec`), and exact search over a matrix
is as fast as an approximate index at these sizes (`bench/` measures it). Either way the
ranking is fused the same.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from threadline.domain.records import SearchHit
from threadline.providers.embedders.base import Embedder, Vectors
from threadline.store.base import Store, StoreTx
from threadline.tools.file_search.filters import matches

# The fusion's constants. Full text matches a natural-language question's common words in
# many passages, so its ranking is the weaker signal and counts half; a small `k` lets a
# first place in either ranking count for more than a middling place in both. Chosen by
# measuring recall on `bench/retrieval_corpus.py` (the common k = 60 with equal weights
# fused below what vectors found alone there, and the corpus' best setting, k = 2, was left
# for this rounder one); another corpus may prefer others.
RRF_K = 10
TEXT_WEIGHT = 0.5
VECTOR_WEIGHT = 1.0
# How deep each ranking is read before fusing: well past the 50 results a search may ask.
CANDIDATES = 100
MAX_QUERY_WORDS = 32
Mode = Literal["hybrid", "text", "vector"]

# Words that match nearly every chunk: left out of the full-text query, where each would
# widen the match to most of the store (FTS5 has no stop list of its own).
_STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(query: str) -> list[str]:
    words = [w for w in _WORD.findall(query.lower()) if w not in _STOP_WORDS]
    return list(dict.fromkeys(words))[:MAX_QUERY_WORDS]


@dataclass
class _StoreVectors:
    generation: int = -1
    newest_seq: int = 0
    model: str = ""
    seqs: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    file_ids: npt.NDArray[np.object_] = field(default_factory=lambda: np.zeros(0, object))
    matrix: Vectors = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class VectorCache:
    """Each store's vectors, as loaded by this process and kept current."""

    def __init__(self) -> None:
        self._stores: dict[str, _StoreVectors] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def vectors(self, tx: StoreTx, store_id: str, model: str) -> _StoreVectors:
        generation, newest = await tx.index_state(store_id)
        held = self._stores.get(store_id)
        if held is not None and (held.generation, held.newest_seq, held.model) == (
            generation,
            newest,
            model,
        ):
            return held
        async with self._locks.setdefault(store_id, asyncio.Lock()):
            held = self._stores.get(store_id)
            if held is None or held.generation != generation or held.model != model:
                held = _StoreVectors(generation=generation, model=model)
            if held.newest_seq < newest:
                rows = await tx.chunk_vectors(store_id, model, held.newest_seq)
                held = _appended(held, rows)
            held.newest_seq = max(held.newest_seq, newest)
            self._stores[store_id] = held
            return held

    def forget(self, store_id: str) -> None:
        self._stores.pop(store_id, None)


def _appended(held: _StoreVectors, rows: list[tuple[int, str, bytes]]) -> _StoreVectors:
    if not rows:
        return held
    matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype="<f4")
    matrix = matrix.reshape(len(rows), -1)
    seqs = np.fromiter((row[0] for row in rows), np.int64, len(rows))
    files = np.array([row[1] for row in rows], dtype=object)
    if held.matrix.size:
        matrix = np.vstack([held.matrix, matrix])
        seqs = np.concatenate([held.seqs, seqs])
        files = np.concatenate([held.file_ids, files])
    return _StoreVectors(
        generation=held.generation,
        newest_seq=max(held.newest_seq, int(seqs[-1])),
        model=held.model,
        seqs=seqs,
        file_ids=files,
        matrix=np.ascontiguousarray(matrix, dtype=np.float32),
    )


def _nearest(
    held: _StoreVectors, query: Vectors, allowed: set[str] | None, limit: int
) -> list[tuple[float, int]]:
    """The store's `limit` chunks most like the query: (similarity, seq), best first."""
    if not held.matrix.size:
        return []
    scores = held.matrix @ query
    if allowed is not None:
        mask = np.fromiter((f in allowed for f in held.file_ids), bool, len(held.file_ids))
        scores = np.where(mask, scores, -np.inf)
    count = min(limit, len(scores))
    best = np.argpartition(-scores, count - 1)[:count]
    best = best[np.argsort(-scores[best])]
    return [(float(scores[i]), int(held.seqs[i])) for i in best if np.isfinite(scores[i])]


@dataclass(frozen=True)
class SearchRequest:
    queries: Sequence[str]
    max_results: int = 10
    score_threshold: float = 0.0
    filters: dict[str, Any] | None = None
    mode: Mode = "hybrid"


class Searcher:
    def __init__(self, store: Store, embedder: Embedder, cache: VectorCache | None = None):
        self.store = store
        self.embedder = embedder
        self.cache = cache or VectorCache()

    async def search(
        self, project: str, store_ids: Sequence[str], request: SearchRequest
    ) -> list[SearchHit]:
        """The best chunks of the stores for the queries, best first."""
        queries = [q for q in request.queries if q.strip()]
        if not store_ids or not queries:
            return []
        # The queries are embedded (in a thread) while the database works.
        embedding = (
            asyncio.ensure_future(self.embedder.embed(queries, kind="query"))
            if request.mode != "text"
            else None
        )
        try:
            async with self.store.transaction(durable=False) as tx:
                allowed = None
                if request.filters is not None:
                    files = await tx.files_of_vector_stores(store_ids)
                    allowed = {f["id"] for f in files if matches(f["attributes"], request.filters)}
                with_text = request.mode != "vector"
                rankings = await self._rankings(
                    tx, store_ids, queries, embedding, allowed, with_text
                )
                fused = _fuse(rankings)
                best = [(seq, score) for seq, score in fused if score >= request.score_threshold][
                    : request.max_results
                ]
                texts = await tx.chunk_texts([seq for seq, _ in best])
                found = list({(texts[seq][0], texts[seq][1]) for seq, _ in best if seq in texts})
                names = {
                    f["id"]: f["filename"]
                    for f in await tx.get_files(project, list({file for _, file in found}))
                }
                entries = await tx.vector_store_files_named(found)
        finally:
            if embedding is not None and not embedding.done():
                embedding.cancel()
        attributes = {(e["vector_store_id"], e["id"]): e["attributes"] for e in entries}
        hits: list[SearchHit] = []
        for seq, score in best:
            if seq not in texts:
                continue
            store_id, file_id, text = texts[seq]
            hits.append(
                SearchHit(
                    file_id=file_id,
                    filename=names.get(file_id, file_id),
                    score=round(score, 6),
                    text=text,
                    attributes=attributes.get((store_id, file_id), {}),
                )
            )
        return hits

    async def _rankings(
        self,
        tx: StoreTx,
        store_ids: Sequence[str],
        queries: Sequence[str],
        embedding: asyncio.Future[Vectors] | None,
        allowed: set[str] | None,
        with_text: bool,
    ) -> list[tuple[Sequence[int], float]]:
        """Each query's full-text and vector rankings, weighted for fusion. Where vectors
        are searched in process, their product runs in a thread while the database ranks
        the text (one transaction's connection runs one statement at a time, so where the
        database ranks both, they take turns)."""
        text_rankings: list[list[int]] = []
        vector_rankings: list[list[int]] = []
        if embedding is not None and not tx.supports_ann:
            held = [
                await self.cache.vectors(tx, store_id, self.embedder.model)
                for store_id in store_ids
            ]
            # In a thread from now, while this loop waits on the database (SQLite runs a
            # statement on the loop's own thread, so a product started later would wait).
            vectors = await embedding
            products = asyncio.get_running_loop().run_in_executor(
                None, _nearest_in_all, vectors, held, allowed
            )
            if with_text:
                text_rankings = await self._text_rankings(tx, store_ids, queries, allowed)
            vector_rankings = await products
        else:
            if with_text:
                text_rankings = await self._text_rankings(tx, store_ids, queries, allowed)
            if embedding is not None:
                vector_rankings = await self._ann_rankings(tx, store_ids, await embedding, allowed)
        weighted: list[tuple[Sequence[int], float]] = [(r, TEXT_WEIGHT) for r in text_rankings]
        return weighted + [(r, VECTOR_WEIGHT) for r in vector_rankings]

    async def _text_rankings(
        self,
        tx: StoreTx,
        store_ids: Sequence[str],
        queries: Sequence[str],
        allowed: set[str] | None,
    ) -> list[list[int]]:
        rankings: list[list[int]] = []
        for query in queries:
            depth = CANDIDATES if allowed is None else CANDIDATES * 4
            found = await tx.text_search(store_ids, query_words(query), depth)
            kept = [seq for seq, file_id in found if allowed is None or file_id in allowed]
            rankings.append(kept[:CANDIDATES])
        return rankings

    async def _ann_rankings(
        self, tx: StoreTx, store_ids: Sequence[str], vectors: Vectors, allowed: set[str] | None
    ) -> list[list[int]]:
        rankings: list[list[int]] = []
        for row in vectors:
            nearest = await tx.nearest_chunks(
                store_ids,
                self.embedder.model,
                np.asarray(row, "<f4").tobytes(),
                CANDIDATES,
                allowed,
            )
            rankings.append([seq for _, seq in nearest])
        return rankings


def _nearest_in_all(
    vectors: Vectors, held: Sequence[_StoreVectors], allowed: set[str] | None
) -> list[list[int]]:
    rankings: list[list[int]] = []
    for row in vectors:
        merged = [
            found
            for store_vectors in held
            for found in _nearest(store_vectors, row, allowed, CANDIDATES)
        ]
        merged.sort(key=lambda found: (-found[0], found[1]))
        rankings.append([seq for _, seq in merged[:CANDIDATES]])
    return rankings


def _fuse(rankings: Sequence[tuple[Sequence[int], float]]) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of (ranking, weight) pairs; scores in (0, 1]."""
    lists = [(ranking, weight) for ranking, weight in rankings if ranking]
    if not lists:
        return []
    best_possible = sum(weight for _, weight in lists) / (RRF_K + 1)
    scores: dict[int, float] = {}
    for ranking, weight in lists:
        for rank, seq in enumerate(ranking):
            scores[seq] = scores.get(seq, 0.0) + weight / (RRF_K + 1 + rank)
    return sorted(
        ((seq, score / best_possible) for seq, score in scores.items()),
        key=lambda item: (-item[1], item[0]),
    )
