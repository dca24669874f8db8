"""12. Files and file_search: ingesting files, searching a store, what a search finds, and
what a file_search round adds to a run.

Ingestion is measured as a user sees it: a file uploaded, added to a vector store, and the
store's file polled until it is `completed`; the embedded worker parses, chunks and embeds
it with the bundled model meanwhile. Beside it, the same parse, chunk and embed calls made
in the bench process, with nothing of the service around them.

Search latency needs stores of 10,000 and 100,000 chunks, far more than real ingestion can
fill in a benchmark on two cores: the store of the ingestion part (real files, added through
the API) is grown while its server is stopped, chunks being written straight into its SQLite
file as ingestion writes them (a file's chunks in one transaction, the full-text triggers
keeping the index), with the file rows that go with them; their text is drawn from a
vocabulary of real English words by Zipf's law, their vectors at random (so latency, not
what is found, is measured).

What a search finds is measured on `bench/retrieval_corpus.py`, ingested through the API,
by calling the service's own `Searcher` in the bench process on the same database, once
per ranking (hybrid, full text only, vector only).

PDFs are written with fpdf2 (pure Python, already a development dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from fpdf import FPDF
from sqlalchemy.dialects import sqlite as sqlite_dialect

from bench.common import (
    Figure,
    Section,
    SseEvent,
    ThreadlineServer,
    arrival,
    at_least,
    at_most,
    expect,
    http_client,
    ms,
    p50,
    p95,
)
from bench.harness import Bench
from bench.model_server import ModelRecord, tool_answers_read, tools_model
from bench.overhead import streamed_run
from bench.retrieval_corpus import DOCUMENTS, KINDS, QUESTIONS, Document, Question
from bench.tool_rounds import Pair
from threadline.domain.ids import IdKind, new_id
from threadline.providers.embedders import minilm_files, minilm_pieces
from threadline.providers.embedders.local_minilm import LocalMiniLM
from threadline.store.sql_files import _CHUNK_TEXTS, _SQLITE_TEXT_SEARCH
from threadline.store.sql_store import SqlStore
from threadline.tools.file_search.chunk import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    chunk,
)
from threadline.tools.file_search.parse import parse
from threadline.tools.file_search.search import CANDIDATES, Mode, Searcher, SearchRequest
from threadline.tools.file_search.search import query_words as search_words

PAGES_PER_SECOND_TARGET = 20.0
SEARCH_TARGET_MS = 25.0
PROJECT = "default"
POLL_SECONDS = 0.02
INDEX_TIMEOUT = 1800.0
WORDS_PER_PAGE = 450
CHUNKS_PER_FILE = 100
CHUNK_WORDS = (100, 200)
QUERY_WORDS = (3, 6)
# Query words skip the commonest words of the vocabulary (mostly ones the search leaves out).
QUERY_MIN_RANK = 100
RECALL_AT = 5
# What `POST /v1/vector_stores/{id}/search` returns unless asked for another number.
RESULTS = 10
TEXT_READS = 20
# The file_search tool's default of results per call (`tools/file_search/tool.py`).
TOOL_RESULTS = 20


# -- text --------------------------------------------------------------------------------------

_SUBJECTS = (
    "The committee", "A quiet engineer", "Our neighbour", "The river pilot", "Every apprentice",
    "The harbour master", "A visiting botanist", "The night baker", "The museum guide",
    "Most of the students", "The county surveyor", "A retired sailor", "The head gardener",
    "The new librarian", "Two of the carpenters", "The station clerk", "A travelling painter",
    "The school choir", "The orchard keeper", "An inspector from the ministry",
    "The ferry crew", "A young mechanic", "The village doctor", "The weaver's daughter",
)  # fmt: skip
_VERBS = (
    "repaired", "described", "measured", "painted", "forgot", "carried", "admired",
    "questioned", "collected", "ignored", "rebuilt", "sketched", "counted", "moved", "sold",
    "borrowed", "inspected", "photographed", "cleaned", "ordered", "wrapped", "returned",
    "studied", "mentioned",
)  # fmt: skip
_OBJECTS = (
    "the copper lantern", "a broken telescope", "the winter garden", "several maps of the coast",
    "the village bell", "an unfinished letter", "the orchard fence", "a crate of lemons",
    "the signal tower", "two wooden boats", "the old mill wheel", "a box of glass beads",
    "the chapel roof", "a ledger of debts", "the north road", "a basket of eggs",
    "the brass compass", "the reading room", "a stack of slate tiles", "the sheep pens",
    "a faded tapestry", "the iron gate", "the spring water pump", "a jar of honey",
    "the railway timetable", "the printing press", "a pair of oars", "the flower market",
)  # fmt: skip
_TAILS = (
    "before the storm arrived", "while the market was closing", "after a long argument",
    "with surprising patience", "under a grey sky", "near the northern bridge",
    "for the spring festival", "without telling anyone", "during the morning shift",
    "as the tide turned", "in less than an hour", "for the third time that year",
    "at the request of the council", "despite the cold", "by lamplight",
    "to everyone's relief", "on the last day of harvest", "with borrowed tools",
)  # fmt: skip
_OPENERS = (
    "In the spring", "Later that week", "According to the records", "Some years ago",
    "On Tuesday", "By the end of the season", "At first light", "Meanwhile",
    "Without any warning", "As usual",
)  # fmt: skip
_LINKS = ("and then", "while", "because", "although", "so that", "after which")


def _sentence(rng: random.Random) -> str:
    clause = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    if rng.random() < 0.3:
        other = f"{rng.choice(_SUBJECTS).lower()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        clause = f"{clause} {rng.choice(_LINKS)} {other}"
    clause = f"{clause} {rng.choice(_TAILS)}"
    if rng.random() < 0.25:
        clause = f"{rng.choice(_OPENERS)}, {clause[0].lower()}{clause[1:]}"
    return f"{clause}."


def prose_pages(count: int, seed: int, words: int = WORDS_PER_PAGE) -> list[str]:
    """`count` pages of about `words` words of varied sentences, in paragraphs; the same
    pages for the same seed."""
    rng = random.Random(seed)
    pages = []
    for _ in range(count):
        paragraphs, written = [], 0
        while written < words:
            sentences = [_sentence(rng) for _ in range(rng.randint(3, 6))]
            written += sum(len(s.split()) for s in sentences)
            paragraphs.append(" ".join(sentences))
        pages.append("\n\n".join(paragraphs))
    return pages


def pdf_of(pages: Sequence[str]) -> bytes:
    """A text PDF with one page per given page."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    for page in pages:
        pdf.add_page()
        pdf.multi_cell(0, 4.6, page)
    return bytes(pdf.output())


@dataclass(frozen=True)
class Vocabulary:
    """The whole words of the bundled model's WordPiece vocabulary, in its order (most
    frequent in its training text first), drawn by Zipf's law (p ∝ 1/rank)."""

    words: npt.NDArray[np.object_]
    weights: npt.NDArray[np.float64]

    @classmethod
    def of_the_model(cls) -> Vocabulary:
        tokens = json.loads(minilm_files.tokenizer_path().read_text())["model"]["vocab"]
        ordered = sorted(tokens.items(), key=lambda item: int(item[1]))
        words = [t for t, _ in ordered if t.isascii() and t.isalpha() and len(t) > 1]
        weights = 1.0 / np.arange(1, len(words) + 1, dtype=np.float64)
        return cls(np.array(words, dtype=object), weights / weights.sum())

    def texts(self, rng: np.random.Generator, count: int) -> list[str]:
        lengths = rng.integers(CHUNK_WORDS[0], CHUNK_WORDS[1] + 1, count)
        drawn = self.words[rng.choice(len(self.words), int(lengths.sum()), p=self.weights)]
        ends = np.cumsum(lengths)
        return [
            " ".join(drawn[end - n : end].tolist()) for n, end in zip(lengths, ends, strict=True)
        ]

    def queries(self, rng: np.random.Generator, count: int) -> list[str]:
        tail = self.weights[QUERY_MIN_RANK:] / self.weights[QUERY_MIN_RANK:].sum()
        queries = []
        for _ in range(count):
            size = int(rng.integers(QUERY_WORDS[0], QUERY_WORDS[1] + 1))
            picked = rng.choice(len(tail), size, replace=False, p=tail) + QUERY_MIN_RANK
            queries.append(" ".join(self.words[picked].tolist()))
        return queries


def unit_vectors(rng: np.random.Generator, count: int) -> npt.NDArray[np.float32]:
    vectors = rng.standard_normal((count, minilm_files.DIMENSIONS), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype("<f4")


# -- the API -----------------------------------------------------------------------------------


async def upload(client: httpx.AsyncClient, filename: str, data: bytes) -> str:
    response = await client.post(
        "/v1/files", files={"file": (filename, data)}, data={"purpose": "assistants"}
    )
    return str(expect(response, f"upload {filename}")["id"])


async def create_store(client: httpx.AsyncClient, name: str) -> str:
    return str(expect(await client.post("/v1/vector_stores", json={"name": name}), "store")["id"])


async def add_and_wait(client: httpx.AsyncClient, store_id: str, file_id: str) -> float:
    """Add a file to the store and poll it until it is indexed; the seconds from sending the
    add to the poll that saw it `completed`."""
    started = time.perf_counter()
    entry = expect(
        await client.post(f"/v1/vector_stores/{store_id}/files", json={"file_id": file_id}),
        "add file",
    )
    while entry["status"] == "in_progress":
        if time.perf_counter() - started > INDEX_TIMEOUT:
            raise RuntimeError(f"file {file_id} still in progress after {INDEX_TIMEOUT:g} s")
        await asyncio.sleep(POLL_SECONDS)
        entry = expect(
            await client.get(f"/v1/vector_stores/{store_id}/files/{file_id}"), "get store file"
        )
    elapsed = time.perf_counter() - started
    if entry["status"] != "completed":
        raise RuntimeError(f"file {file_id} ended {entry['status']}: {entry.get('last_error')}")
    return elapsed


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of this process to a server's database that cannot write to it."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield connection
    finally:
        connection.close()


def chunks_of(path: Path, file_id: str) -> int:
    with read_only(path) as connection:
        row = connection.execute("SELECT count(*) FROM chunks WHERE file_id = ?", (file_id,))
        return int(row.fetchone()[0])


def search_sql() -> str:
    """The SQL of the service's SQLite full-text search, with its named parameters
    (`:p_match`, `:p_store_ids`, `:p_limit`), which sqlite3 binds as they are."""
    statement = _SQLITE_TEXT_SEARCH.statement
    assert isinstance(statement, sa.TextClause)
    return statement.text


# -- (a) ingestion -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stages:
    parse: float
    chunk: float
    embed: float | None
    chunks: int
    pieces: int  # word pieces in all the chunks: what the model reads
    text_pieces: int  # word pieces in the text, once
    pages: int


async def _in_process(filename: str, data: bytes, embed: bool) -> Stages:
    """The calls ingestion makes (`engine/ingestion.py`), timed one by one, in this process."""
    started = time.perf_counter()
    document = await asyncio.to_thread(parse, filename, data)
    parsed = time.perf_counter()
    # The text tokenized once, for the chunker and the embedder both.
    text_pieces = await asyncio.to_thread(minilm_pieces.read, document.text)
    chunks = await asyncio.to_thread(
        chunk, document.text, DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, pieces=text_pieces
    )
    chunked = time.perf_counter()
    embedded = None
    if embed:
        embedder = LocalMiniLM()
        await embedder.prepare()
        before = time.perf_counter()
        # As ingestion embeds with the bundled model: the chunks by their spans of the text.
        spans = [(piece.start, piece.end) for piece in chunks]
        await embedder.embed_spans(document.text, spans, pieces=text_pieces)
        embedded = time.perf_counter() - before
    return Stages(
        parsed - started,
        chunked - parsed,
        embedded,
        len(chunks),
        sum(piece.tokens for piece in chunks),
        len(text_pieces),
        len(document.pages),
    )


@dataclass(frozen=True)
class Ingested:
    """Part (a)'s database, kept for part (b): its store and a plain-text file in it."""

    path: Path
    store_id: str
    file_id: str
    files: int


async def _measure_ingestion(bench: Bench, section: Section) -> Ingested:
    size = bench.size
    pages = prose_pages(size.file_pdf_pages, seed=1)
    pdf = pdf_of(pages)
    text = "\n\n".join(pages).encode()
    pdf_floor = await _in_process("report.pdf", pdf, embed=True)
    text_floor = await _in_process("report.txt", text, embed=False)
    if pdf_floor.pages != len(pages):
        raise RuntimeError(f"the PDF has {pdf_floor.pages} pages, not {len(pages)}")
    assert pdf_floor.embed is not None
    path = bench.sqlite_path("file-ingestion")
    with ThreadlineServer(
        f"sqlite:///{path}", bench.workdir, model_url=bench.model.base_url
    ) as server:
        async with http_client(server.url) as client:
            store_id = await create_store(client, "ingestion")
            # The first file loads the embedding model in the server.
            warm = await upload(client, "warm-up.txt", prose_pages(1, seed=2)[0].encode())
            first = await add_and_wait(client, store_id, warm)
            pdf_id = await upload(client, "report.pdf", pdf)
            pdf_seconds = await add_and_wait(client, store_id, pdf_id)
            text_id = await upload(client, "report.txt", text)
            text_seconds = await add_and_wait(client, store_id, text_id)
    pdf_chunks, text_chunks = chunks_of(path, pdf_id), chunks_of(path, text_id)
    floor_seconds = pdf_floor.parse + pdf_floor.chunk + pdf_floor.embed
    count = len(pages)
    words = len(text.split())
    value = count / pdf_seconds
    section.add(
        Figure(
            f"PDF of {count} pages ({words:,} words, {pdf_chunks} chunks): pages/s, add →"
            " completed",
            value,
            "pages/s",
            floor=f"{count / floor_seconds:.1f} pages/s (parse + chunk + embed in the bench"
            " process)",
            target=f"≥ {PAGES_PER_SECOND_TARGET:g} pages/s",
            ok=at_least(value, PAGES_PER_SECOND_TARGET),
            digits=1,
        )
    )
    section.add(
        Figure(
            "PDF ingestion: chunks/s",
            pdf_chunks / pdf_seconds,
            "chunks/s",
            floor=f"{pdf_floor.chunks / floor_seconds:.1f} chunks/s ({pdf_floor.chunks} chunks)",
            digits=1,
        )
    )
    section.add(
        Figure(
            "PDF ingestion: add → completed",
            pdf_seconds,
            "s",
            floor=f"parse {pdf_floor.parse:.2f} s + chunk {pdf_floor.chunk:.2f} s + embed"
            f" {pdf_floor.embed:.2f} s (bench process)",
            digits=2,
        )
    )
    section.add(
        Figure(
            f"Plain-text file of the same text ({text_chunks} chunks): add → completed",
            text_seconds,
            "s",
            floor=f"parse {text_floor.parse:.3f} s + chunk {text_floor.chunk:.2f} s (bench"
            " process, not embedded)",
            digits=2,
        )
    )
    section.add(
        Figure(
            "Plain-text ingestion: chunks/s",
            text_chunks / text_seconds,
            "chunks/s",
            floor=f"PDF: {pdf_chunks / pdf_seconds:.1f} chunks/s",
            digits=1,
        )
    )
    section.notes.append(
        f"Ingestion: the first file the server indexed (one page of the same prose, which"
        f" loads the model) took {first:.2f} s from add to completed."
    )
    if value < PAGES_PER_SECOND_TARGET:
        share = pdf_floor.embed / floor_seconds
        repeated = pdf_floor.pieces / pdf_floor.text_pieces
        section.notes.append(
            f"Ingestion target missed: {value:.1f} pages/s. Embedding is {share:.0%} of the"
            f" same work done in the bench process: {pdf_floor.embed:.1f} s for"
            f" {pdf_floor.chunks} chunks holding {pdf_floor.pieces:,} word pieces"
            f" ({pdf_floor.pieces / count:,.0f} a page, {repeated:.1f}"
            f" times the text's own: chunks of {DEFAULT_MAX_TOKENS} overlap by"
            f" {DEFAULT_OVERLAP_TOKENS}), the text read by the model once, in windows of at most"
            f" {minilm_files.MAX_TOKENS}; {pdf_floor.text_pieces / pdf_floor.embed:,.0f} word"
            " pieces/s"
            f" on this machine sets the pace, {count / floor_seconds:.1f} pages/s without the"
            " service."
        )
    return Ingested(path, store_id, text_id, 3)


# -- (b) search latency ------------------------------------------------------------------------


def _grow(
    path: Path,
    store_id: str,
    seed_file: str,
    until: int,
    vocabulary: Vocabulary,
    rng: np.random.Generator,
) -> int:
    """Chunks written into the store until it holds `until`, in files of `CHUNKS_PER_FILE`
    chunks, each file's rows (its `files` row and its place in the store, completed, copied
    from the real file's) and chunks in one transaction; how many files were added."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        (have,) = connection.execute(
            "SELECT count(*) FROM chunks WHERE vector_store_id = ?", (store_id,)
        ).fetchone()
        project, purpose, file_body = connection.execute(
            "SELECT project, purpose, body FROM files WHERE id = ?", (seed_file,)
        ).fetchone()
        (entry_body,) = connection.execute(
            "SELECT body FROM vector_store_files WHERE vector_store_id = ? AND id = ?",
            (store_id, seed_file),
        ).fetchone()
        file_record, entry = json.loads(file_body), json.loads(entry_body)
        files = 0
        while have < until:
            count = min(CHUNKS_PER_FILE, until - have)
            file_id = new_id(IdKind.FILE)
            texts = vocabulary.texts(rng, count)
            vectors = unit_vectors(rng, count)
            usage = sum(len(text.encode()) for text in texts) + vectors.nbytes
            record = {**file_record, "id": file_id, "filename": f"{file_id}.txt"}
            placed = {**entry, "id": file_id, "usage_bytes": usage, "status": "completed"}
            with connection:
                connection.execute(
                    "INSERT INTO files (id, project, purpose, body) VALUES (?, ?, ?, ?)",
                    (file_id, project, purpose, json.dumps(record)),
                )
                connection.execute(
                    "INSERT INTO vector_store_files"
                    " (id, vector_store_id, batch_id, status, usage_bytes, body)"
                    " VALUES (?, ?, NULL, 'completed', ?, ?)",
                    (file_id, store_id, usage, json.dumps(placed)),
                )
                connection.executemany(
                    "INSERT INTO chunks"
                    " (vector_store_id, file_id, chunk_index, text, embedding, embedding_model)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (store_id, file_id, index, text, vector.tobytes(), minilm_files.MODEL_ID)
                        for index, (text, vector) in enumerate(zip(texts, vectors, strict=True))
                    ],
                )
            have += count
            files += 1
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return files


def _floor_searches(
    path: Path, store_id: str, queries: Sequence[str], warmup: int, rng: np.random.Generator
) -> tuple[list[float], list[int]]:
    """Each query straight against the index in this process: the service's full-text SQL
    on its SQLite file, and the product of the store's vectors (loaded beforehand) with a
    query vector (made beforehand), with the best `CANDIDATES` of each picked. The times,
    and how many chunks the full-text query matched for each, after `warmup` queries."""
    sql = search_sql()
    with read_only(path) as connection:
        blobs = connection.execute(
            "SELECT embedding FROM chunks WHERE vector_store_id = ? AND embedding_model = ?"
            " ORDER BY seq",
            (store_id, minilm_files.MODEL_ID),
        ).fetchall()
        matrix = np.frombuffer(b"".join(blob for (blob,) in blobs), dtype="<f4")
        matrix = np.ascontiguousarray(matrix.reshape(len(blobs), -1), dtype=np.float32)
        vectors = unit_vectors(rng, len(queries))
        times, matched = [], []
        for query, vector in zip(queries, vectors, strict=True):
            started = time.perf_counter()
            match = " OR ".join(f'"{word}"' for word in search_words(query))
            params = {"p_match": match, "p_store_ids": json.dumps([store_id])}
            found = []
            if match:  # the service asks nothing of the index for a query of stop words only
                found = connection.execute(sql, {**params, "p_limit": CANDIDATES}).fetchall()
            scores = matrix @ vector
            best = np.argpartition(-scores, CANDIDATES - 1)[:CANDIDATES]
            best = best[np.argsort(-scores[best])]
            times.append(time.perf_counter() - started)
            count = 0
            if match:
                (count,) = connection.execute(
                    "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)
                ).fetchone()
            matched.append(int(count))
            if len(found) != min(count, CANDIDATES):
                raise RuntimeError(f"{query!r}: {len(found)} found, {count} matched")
    return times[warmup:], matched[warmup:]


def _text_reads(
    path: Path, store_id: str, count: int, rng: np.random.Generator
) -> tuple[list[float], list[float], str]:
    """Reading the texts of `RESULTS` chunks of the store (picked at random) as a search
    reads its results' texts: with the service's statement as SQLAlchemy renders it for
    SQLite, and with the same rows asked for by primary key. The times of each, and
    SQLite's plan for the service's statement."""
    service = _CHUNK_TEXTS.rendered(sqlite_dialect.dialect()).sql
    direct = (
        "SELECT seq, vector_store_id, file_id, text FROM chunks"
        " WHERE seq IN (SELECT value FROM json_each(?))"
    )
    with read_only(path) as connection:
        seqs = [
            int(seq)
            for (seq,) in connection.execute(
                "SELECT seq FROM chunks WHERE vector_store_id = ?", (store_id,)
            )
        ]
        plan = "; ".join(
            str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {service}", ("[]",))
        )
        theirs: list[float] = []
        ours: list[float] = []
        for _ in range(count):
            picked = json.dumps(sorted(rng.choice(seqs, RESULTS, replace=False).tolist()))
            for sql, times in ((service, theirs), (direct, ours)):
                started = time.perf_counter()
                rows = connection.execute(sql, (picked,)).fetchall()
                times.append(time.perf_counter() - started)
                if len(rows) != RESULTS:
                    raise RuntimeError(f"read {len(rows)} chunks of {picked}")
    return theirs, ours, plan


async def _query_embeddings(queries: Sequence[str]) -> list[float]:
    embedder = LocalMiniLM()
    await embedder.prepare()
    times = []
    for query in queries:
        started = time.perf_counter()
        await embedder.embed([query], kind="query")
        times.append(time.perf_counter() - started)
    return times


@dataclass(frozen=True)
class Searched:
    chunks: int
    files: int
    first: float
    times: list[float]
    floor: list[float]
    matched: list[int]
    texts: list[float]
    texts_by_key: list[float]


async def _searches(
    bench: Bench, url: str, store_id: str, chunks: int, files: int, queries: Sequence[str]
) -> tuple[float, list[float]]:
    size = bench.size
    with ThreadlineServer(url, bench.workdir, model_url=bench.model.base_url) as server:
        async with http_client(server.url) as client:
            store = expect(await client.get(f"/v1/vector_stores/{store_id}"), "get store")
            if store["file_counts"]["completed"] != files:
                raise RuntimeError(f"the store counts {store['file_counts']}, not {files} files")
            times = []
            for query in queries:
                started = time.perf_counter()
                found = expect(
                    await client.post(
                        f"/v1/vector_stores/{store_id}/search", json={"query": query}
                    ),
                    "search",
                )
                times.append(time.perf_counter() - started)
                if not found["data"]:
                    raise RuntimeError(f"no results for {query!r} in {chunks:,} chunks")
    # The first search after the start loads the store's vectors and the model.
    return times[0], times[1 + size.warmup :]


async def _measure_search(bench: Bench, section: Section, ingested: Ingested) -> None:
    size = bench.size
    path, store_id, seed_file = ingested.path, ingested.store_id, ingested.file_id
    url = f"sqlite:///{path}"
    vocabulary = Vocabulary.of_the_model()
    rng = np.random.default_rng(12)
    files = ingested.files
    results: list[Searched] = []
    for chunks in (size.file_search_chunks_small, size.file_search_chunks_large):
        started = time.perf_counter()
        files += await asyncio.to_thread(_grow, path, store_id, seed_file, chunks, vocabulary, rng)
        section.notes.append(
            f"Search: writing the store up to {chunks:,} chunks ({files:,} files) took"
            f" {time.perf_counter() - started:.1f} s."
        )
        queries = vocabulary.queries(rng, 1 + size.warmup + size.file_searches)
        first, times = await _searches(bench, url, store_id, chunks, files, queries)
        floor, matched = await asyncio.to_thread(
            _floor_searches, path, store_id, queries[1:], size.warmup, rng
        )
        texts, by_key, plan = await asyncio.to_thread(
            _text_reads, path, store_id, min(size.file_searches, TEXT_READS), rng
        )
        results.append(Searched(chunks, files, first, times, floor, matched, texts, by_key))
        section.notes.append(
            f"Search on {chunks:,} chunks: the full-text query (an OR of the query's words)"
            f" matched {p50(matched):,.0f} chunks at the median, {p95(matched):,.0f} at p95,"
            f" {matched.count(0)} queries none."
        )
    section.notes.append(
        "SQLite's plan for the statement that reads the results' texts (`_CHUNK_TEXTS` in"
        f" `threadline/store/sql_files.py`, as rendered for SQLite): `{plan}`."
    )
    embedding = await _query_embeddings(vocabulary.queries(rng, size.warmup + size.file_searches))
    embedding = embedding[size.warmup :]
    for searched in results:
        large = searched.chunks == size.file_search_chunks_large
        value = ms(p50(searched.times))
        section.add(
            Figure(
                f"Search on {searched.chunks:,} chunks ({searched.files:,} files), p50",
                value,
                "ms",
                floor=f"{ms(p50(searched.floor)):.2f} ms (full-text query + vector product in"
                " the bench process)",
                target=f"≤ {SEARCH_TARGET_MS:g} ms" if large else "—",
                ok=at_most(value, SEARCH_TARGET_MS) if large else None,
                digits=2,
            )
        )
        section.add(
            Figure(
                f"Search on {searched.chunks:,} chunks, p95",
                ms(p95(searched.times)),
                "ms",
                floor=f"{ms(p95(searched.floor)):.2f} ms",
                digits=2,
            )
        )
        section.add(
            Figure(
                f"Reading the texts of {RESULTS} chunks of {searched.chunks:,} with the service's"
                " statement (bench process), p50",
                ms(p50(searched.texts)),
                "ms",
                floor=f"{ms(p50(searched.texts_by_key)):.2f} ms (the same rows by primary key)",
                digits=2,
            )
        )
        section.add(
            Figure(
                f"Search on {searched.chunks:,} chunks: the first after the server started",
                ms(searched.first),
                "ms",
                floor="(loads the model and the store's vectors)",
                digits=1,
            )
        )
    section.add(
        Figure(
            "Embedding one query with the bundled model (bench process), p50",
            ms(p50(embedding)),
            "ms",
            floor=f"p95 {ms(p95(embedding)):.2f} ms",
            digits=2,
        )
    )
    biggest = results[-1]
    if not at_most(ms(p50(biggest.times)), SEARCH_TARGET_MS):
        section.notes.append(
            f"Search target missed on {biggest.chunks:,} chunks: p50"
            f" {ms(p50(biggest.times)):.2f} ms. Parts of it, each measured alone in the bench"
            f" process (p50): the full-text query and the vector product,"
            f" {ms(p50(biggest.floor)):.2f} ms (the floor; the full-text OR matched"
            f" {p50(biggest.matched):,.0f} chunks, each ranked by bm25); reading the results'"
            f" texts with the service's statement, {ms(p50(biggest.texts)):.2f} ms"
            f" ({ms(p50(biggest.texts_by_key)):.2f} ms by primary key; SQLite's plan is above);"
            f" embedding the query, {ms(p50(embedding)):.2f} ms."
        )


# -- (c) recall on a corpus with known answers -------------------------------------------------


async def _ingest_corpus(
    client: httpx.AsyncClient, documents: Sequence[Document]
) -> tuple[str, float]:
    """A store of the documents, one file each, added in one batch; the seconds from the
    batch's create to the poll that saw it completed."""
    store_id = await create_store(client, "corpus")
    ids = [await upload(client, f"{d.id}.md", d.text.encode()) for d in documents]
    started = time.perf_counter()
    batch = expect(
        await client.post(f"/v1/vector_stores/{store_id}/file_batches", json={"file_ids": ids}),
        "create batch",
    )
    while batch["status"] == "in_progress":
        if time.perf_counter() - started > INDEX_TIMEOUT:
            raise RuntimeError(f"the corpus still in progress after {INDEX_TIMEOUT:g} s")
        await asyncio.sleep(POLL_SECONDS)
        batch = expect(
            await client.get(f"/v1/vector_stores/{store_id}/file_batches/{batch['id']}"),
            "get batch",
        )
    seconds = time.perf_counter() - started
    if batch["file_counts"]["completed"] != len(documents):
        raise RuntimeError(f"the corpus batch ended {batch['status']}: {batch['file_counts']}")
    return store_id, seconds


async def _recall(
    url: str, store_id: str, questions: Sequence[Question]
) -> dict[Mode, dict[str, list[bool]]]:
    """For each ranking, by kind of question: whether the answer was among the first five."""
    found: dict[Mode, dict[str, list[bool]]] = {}
    store = SqlStore(url)
    await store.open()
    try:
        searcher = Searcher(store, LocalMiniLM())
        for mode in ("hybrid", "text", "vector"):
            by_kind: dict[str, list[bool]] = {kind: [] for kind in KINDS}
            for question in questions:
                hits = await searcher.search(
                    PROJECT,
                    [store_id],
                    SearchRequest(queries=[question.text], max_results=RECALL_AT, mode=mode),
                )
                names = [hit["filename"].removesuffix(".md") for hit in hits]
                by_kind[question.kind].append(question.answer in names)
            found[mode] = by_kind
    finally:
        await store.close()
    return found


def _share(hits: Sequence[bool]) -> float:
    return 100.0 * sum(hits) / len(hits) if hits else float("nan")


def _add_recall(
    section: Section,
    found: dict[Mode, dict[str, list[bool]]],
    documents: int,
    questions: int,
) -> None:
    overall = {
        mode: _share([h for hits in kinds.values() for h in hits]) for mode, kinds in found.items()
    }
    hybrid, text, vector = overall["hybrid"], overall["text"], overall["vector"]
    section.add(
        Figure(
            f"Recall@{RECALL_AT}, hybrid ({questions} questions, {documents} documents)",
            hybrid,
            "%",
            floor=f"full text only {text:.1f} %, vector only {vector:.1f} %",
            target="above both full text only and vector only",
            ok=hybrid > text and hybrid > vector,
            digits=1,
        )
    )
    section.add(Figure(f"Recall@{RECALL_AT}, full text only", text, "%", digits=1))
    section.add(Figure(f"Recall@{RECALL_AT}, vector only", vector, "%", digits=1))
    parts, behind = [], []
    for kind in KINDS:
        alone = max(_share(found["text"][kind]), _share(found["vector"][kind]))
        if _share(found["hybrid"][kind]) < alone:
            behind.append(f"{kind} ({_share(found['hybrid'][kind]):.0f} % against {alone:.0f} %)")
        count = len(found["hybrid"][kind])
        shown = " / ".join(f"{_share(found[mode][kind]):.0f} %" for mode in found)
        parts.append(f"{kind} ({count}): {shown}")
    section.notes.append(
        f"Recall@{RECALL_AT} by kind of question (hybrid / full text / vector): "
        + "; ".join(parts)
        + "."
    )
    if behind:
        section.notes.append(
            "Hybrid finds fewer answers than the better ranking alone on these questions: "
            + "; ".join(behind)
            + ". In the fusion a chunk ranked r-th by both rankings scores 2/(60 + r), more"
            " than the 1/61 of a chunk ranked first by one of them alone, for any r below 62:"
            " chunks that share a question's words (found by both) can pass an answer that"
            " vector search alone found."
        )


# -- (d) a run's file_search round -------------------------------------------------------------


def _reply(events: Sequence[SseEvent]) -> str:
    for event in events:
        if event.event == "thread.message.completed":
            parts = event.json()["content"]
            return "".join(p["text"]["value"] for p in parts if p["type"] == "text")
    return ""


def _searched(events: Sequence[SseEvent]) -> int:
    """Results of the run's completed file_search calls, as its stream showed them."""
    results = 0
    for event in events:
        if event.event != "thread.run.step.completed":
            continue
        details = event.json()["step_details"]
        for call in details.get("tool_calls", []):
            if call["type"] == "file_search":
                results += len(call["file_search"].get("results") or [])
    return results


async def _measure_round(
    bench: Bench, client: httpx.AsyncClient, store_id: str, questions: Sequence[Question]
) -> list[Figure]:
    size = bench.size
    prefix = f"fs-{time.time_ns()}-"
    pairs: list[Pair] = []
    asked: list[str] = []
    assistant = expect(
        await client.post(
            "/v1/assistants",
            json={
                "model": f"{prefix}assistant",
                "tools": [{"type": "file_search"}],
                "tool_resources": {"file_search": {"vector_store_ids": [store_id]}},
            },
        ),
        "create assistant",
    )["id"]
    for index in range(size.warmup + size.file_search_pairs):
        question = questions[index % len(questions)].text
        pair = Pair()
        for rounds in (0, 1) if index % 2 == 0 else (1, 0):
            thread = expect(
                await client.post(
                    "/v1/threads",
                    json={"messages": [{"role": "user", "content": question}]},
                ),
                "create thread",
            )
            model = tools_model(rounds, f"{prefix}{index}")
            started, events = await streamed_run(
                client, thread["id"], {"assistant_id": assistant, "model": model}
            )
            pair.walls[rounds] = arrival(events, "thread.run.completed") - started
            pair.models[rounds] = model
            if tool_answers_read(_reply(events)) != rounds:
                raise RuntimeError(f"{model} answered {_reply(events)!r}")
            if rounds == 1 and _searched(events) == 0:
                raise RuntimeError(f"{model}: the file_search call found nothing")
        if index >= size.warmup:
            pairs.append(pair)
            asked.append(question)
    alone = []
    for question in asked:
        started = time.perf_counter()
        expect(
            await client.post(
                f"/v1/vector_stores/{store_id}/search",
                json={"query": question, "max_num_results": TOOL_RESULTS},
            ),
            "search",
        )
        alone.append(time.perf_counter() - started)
    records: dict[str, list[ModelRecord]] = {}
    for record in bench.model.records(tools_model(0, prefix)) + bench.model.records(
        tools_model(1, prefix)
    ):
        records.setdefault(record.model, []).append(record)
    added, between = [], []
    for pair in pairs:
        [without] = _calls(records, pair.models[0], 1)
        first, second = _calls(records, pair.models[1], 2)
        overhead_0 = pair.walls[0] - without.seconds
        overhead_1 = pair.walls[1] - first.seconds - second.seconds
        added.append(overhead_1 - overhead_0)
        between.append(second.arrived - first.ended)
    search_floor = "the same search alone, `POST /v1/vector_stores/{id}/search`"
    return [
        Figure(
            "A file_search round (paired), p50",
            ms(p50(added)),
            "ms",
            floor=f"{ms(p50(alone)):.2f} ms ({search_floor})",
            digits=2,
        ),
        Figure(
            "A file_search round (paired), p95",
            ms(p95(added)),
            "ms",
            floor=f"{ms(p95(alone)):.2f} ms",
            digits=2,
        ),
        Figure(
            "Between the two model calls of a file_search round, p50",
            ms(p50(between)),
            "ms",
            floor=f"{ms(p50(alone)):.2f} ms ({search_floor})",
            digits=2,
        ),
        Figure(
            "Between the two model calls of a file_search round, p95",
            ms(p95(between)),
            "ms",
            floor=f"{ms(p95(alone)):.2f} ms",
            digits=2,
        ),
    ]


def _calls(records: dict[str, list[ModelRecord]], model: str, count: int) -> list[ModelRecord]:
    calls = sorted(records.get(model, []), key=lambda record: record.arrived)
    if len(calls) != count:
        raise RuntimeError(f"{model}: the model server saw {len(calls)} calls, not {count}")
    return calls


# -- the section -------------------------------------------------------------------------------


def _method(bench: Bench, documents: int, questions: int) -> list[str]:
    size = bench.size
    return [
        "Every server is `threadline serve` on SQLite with its embedded worker, which ingests"
        " files one at a time (the default `THREADLINE_INGEST_CONCURRENCY`) and embeds with the"
        f" bundled model ({minilm_files.MODEL_ID}, onnxruntime on the process's cores). Parts"
        " (a) and (b) share a database; (c) and (d) share another and one server.",
        f"(a) Ingestion: a text PDF of {size.file_pdf_pages} pages made with fpdf2, each page"
        f" about {WORDS_PER_PAGE} words of varied prose (sentences put together by a seeded"
        " random generator from lists of subjects, verbs, objects and phrases: the same every"
        " run), uploaded (`POST /v1/files`) and added to a store"
        " (`POST /v1/vector_stores/{id}/files`); its store file is then polled every"
        f" {POLL_SECONDS * 1000:.0f} ms until `completed`. Time: from sending the add to the poll"
        " that saw it completed (so up to one poll late); pages/s and chunks/s divide by it;"
        " chunks are counted in the server's SQLite file (read-only) afterwards. Then the same"
        " for a `.txt` file of the same text. Before both, the server indexes a one-page file,"
        " which loads the model. Floor: the calls ingestion makes (`parse`, the text tokenized"
        f" once, `chunk` with {DEFAULT_MAX_TOKENS}/{DEFAULT_OVERLAP_TOKENS} word pieces on those"
        " pieces, `embed_spans` over the chunks' spans of the text given the same pieces) made"
        " in the bench process with the same model, timed one by one (chunk's time includes"
        " the tokenizing).",
        '(b) Search latency: `POST /v1/vector_stores/{id}/search` with `{"query": q}` (10'
        f" results, hybrid), one at a time, on part (a)'s store grown to"
        f" {size.file_search_chunks_small:,} and then {size.file_search_chunks_large:,} chunks."
        " The chunks beyond its three real files are written with sqlite3 into the database"
        f" while the server is stopped, in files of {CHUNKS_PER_FILE} chunks: each file's"
        " `files` row, its place in the store (`completed`, copied from a real file's) and its"
        " chunks in one transaction, as ingestion commits a file, the full-text triggers"
        f" indexing them. Chunk text: {CHUNK_WORDS[0]}-{CHUNK_WORDS[1]} words drawn by Zipf's law"
        " (p ∝ 1/rank) from the whole words of the bundled model's vocabulary, in its order"
        " (about most frequent first). Embeddings: random unit vectors (384 float32) under the"
        " bundled model's id; **the vectors are random, so this part measures latency only,"
        f" not what is found**. Queries: {QUERY_WORDS[0]}-{QUERY_WORDS[1]} distinct words drawn"
        f" by the same law from past the {QUERY_MIN_RANK} commonest. After each growth the server"
        " is started anew; its first search is reported on its own (it loads the model and the"
        f" store's vectors), then {size.warmup} warm-up searches, then {size.file_searches}"
        " measured.",
        "(b) Floor: the same queries straight against the index in the bench process: the"
        " service's full-text SQL (`_SQLITE_TEXT_SEARCH`: the query's words less stop words,"
        f" OR-ed, ranked by bm25, the best {CANDIDATES}) on the same file, read-only, plus the"
        " product of the store's vectors (loaded into a numpy matrix beforehand) with a"
        f" ready-made query vector and its best {CANDIDATES} picked; no HTTP, no query"
        " embedding, no fusion, no chunk text read. Beside it, what embedding one query costs"
        " (the bundled model, in the bench process).",
        f"(c) Recall@{RECALL_AT}: `bench/retrieval_corpus.py`, {documents} short documents about"
        f" made-up subjects (in groups of four on one theme) and {questions} questions, each"
        " answered by one document: paraphrases (few words shared), keyed on a rare name, code"
        " or number, and ordinary ones. Ingested through the API (one `.md` file per document,"
        " one file batch); after the server stopped, each question is searched in the bench"
        " process by the service's own `Searcher` on the same database"
        f" (`SearchRequest(queries=[q], max_results={RECALL_AT}, mode=...)`, the bundled model"
        " embedding the query) once per ranking: hybrid (what the service does), full text only"
        f" and vector only. Recall@{RECALL_AT}: the share of questions whose document is among"
        " the results.",
        "(d) A file_search round, paired as in section 11: runs with one round and runs with"
        " none, of one assistant with the `file_search` tool and the corpus's store in its tool"
        " resources, each streamed (`stream: true`) on a new thread holding one of the corpus's"
        " questions. The model server's `tools-1-...` model calls `file_search` with"
        ' `{"queries": [the question]}` (the tool returns its default 20 results, which the'
        " second model call reads), then answers; `tools-0-...` answers at once. Figure: (run"
        " with a round - its two model calls) - (run without - its one model call), per pair of"
        f" runs made back to back in alternating order; {size.file_search_pairs} pairs after"
        f" {size.warmup} warm-up pairs. Between the two model calls: from the first call's"
        " response ending to the second call's request arriving. Floor: the same questions"
        " searched alone, `POST /v1/vector_stores/{id}/search` with 20 results. No target.",
    ]


async def measure(bench: Bench) -> Section:
    section = Section("file_search", "12. Files and file_search")
    documents, questions = DOCUMENTS, QUESTIONS
    section.method = _method(bench, len(documents), len(questions))
    ingested = await _measure_ingestion(bench, section)
    await _measure_search(bench, section, ingested)
    path = bench.sqlite_path("file-corpus")
    url = f"sqlite:///{path}"
    with ThreadlineServer(url, bench.workdir, model_url=bench.model.base_url) as server:
        async with http_client(server.url) as client:
            store_id, seconds = await _ingest_corpus(client, documents)
            rounds = await _measure_round(bench, client, store_id, questions)
    section.notes.append(
        f"Recall: the {len(documents)} documents, one file each, were indexed in"
        f" {seconds:.1f} s (one file batch, from its create to the poll that saw it completed)."
    )
    _add_recall(section, await _recall(url, store_id, questions), len(documents), len(questions))
    for figure in rounds:
        section.add(figure)
    return section
