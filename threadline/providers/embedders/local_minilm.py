"""The bundled embedder: all-MiniLM-L6-v2 with int8 weights, run in process.

onnxruntime runs the model (a small graph, no PyTorch), and Hugging Face's `tokenizers`
(WordPiece in Rust, from the model's own `tokenizer.json`, loaded by `minilm_pieces`) splits
the text, so the pieces are exactly those the model was trained on. The graph is the bundled
one rewritten so that its matrix products run in int8 (`minilm_graph` says how, and caches the
result). A vector is made as sentence-transformers makes it for this model: the mean of the
token vectors, scaled to unit length.

The model reads at most `MAX_TOKENS` word pieces. A longer text is not cut to its start:
it is split into as few windows as fit, of even length, each embedded on its own, and the
text's vector is the mean of theirs; so the end of a long chunk still counts in search.

`embed_spans` embeds the chunks of one document at once, and each of the document's word
pieces once, however much the chunks overlap (with the default chunking every piece is in two
chunks): the document is read in windows, and a chunk's vector is the mean of the vectors of
the pieces inside it. A piece's vector depends on the window it was read in, so the windows
are laid as each chunk is read when embedded alone, as far as reading each piece once allows:
the chunks are taken in order, and each reads the pieces it adds to those before it (from the
end of the chunk before to its own end) in even windows. When chunks overlap by half and
their edges fall evenly, every chunk is so read in the very windows it is read in alone.
Windows cut at every chunk edge, and windows that overlap (each piece kept from the window
where it is most central) were measured too: they came no closer to the chunks' own vectors,
and overlap costs more. The document's pieces are those the chunker cut it at when the caller
passes them on (`minilm_pieces`), rather than the document tokenized a second time.

Each window runs on its own, on one core, and as many windows run at once as the process has
cores. The rewritten model quantizes the activations of each run with one scale, so in a batch
a window's vector would depend on its neighbours; windows of full length run no faster in
batches, and a short text (a query) comes alone anyway. The work runs in worker threads,
leaving the event loop free.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from tokenizers import Tokenizer

from threadline.providers.embedders import minilm_graph, minilm_pieces
from threadline.providers.embedders.base import EmbeddingKind, Vectors
from threadline.providers.embedders.minilm_files import (
    DIMENSIONS,
    MAX_TOKENS,
    MODEL_ID,
    model_path,
)
from threadline.providers.embedders.minilm_pieces import Indices, Pieces

# Word pieces in one window, beside its [CLS] and [SEP].
_WINDOW_PIECES = MAX_TOKENS - 2
# Fewer new pieces than this in a span are read with the window before them, not alone in a
# window of their own, where they would have little context.
_MIN_WINDOW_PIECES = 32

# One window's word pieces (without [CLS] and [SEP]).
Window = Sequence[int] | Indices


class LocalMiniLM:
    """The bundled model; every instance shares the one copy loaded in the process."""

    @property
    def model(self) -> str:
        return MODEL_ID

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        """The model is symmetric (trained on pairs of either kind), so `kind` changes
        nothing."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batch = list(texts)
        return await asyncio.to_thread(lambda: _runtime().embed(batch))

    async def embed_spans(
        self, text: str, spans: Sequence[tuple[int, int]], *, pieces: Pieces | None = None
    ) -> Vectors:
        """One unit vector per `(start, end)` character span of `text`: the mean of the
        vectors of the word pieces inside the span, read in the document's windows. A span
        holding no piece (only spaces) is embedded as its text alone. `pieces` are this
        model's pieces of `text`, when the caller has them (see `SpanEmbedder`)."""
        wanted = np.array(list(spans), dtype=np.int64).reshape(-1, 2)
        if len(wanted) and not (
            np.all(wanted[:, 0] >= 0)
            and np.all(wanted[:, 0] <= wanted[:, 1])
            and np.all(wanted[:, 1] <= len(text))
        ):
            raise ValueError("every span must be (start, end) with 0 <= start <= end <= len(text)")
        if pieces is not None and pieces.length != len(text):
            raise ValueError("the pieces given are not those of the text")
        if not len(wanted):
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return await asyncio.to_thread(lambda: _runtime().embed_spans(text, wanted, pieces))

    async def prepare(self) -> None:
        """Load the model now rather than in the first search (the first load on a machine
        also rewrites the graph, which takes seconds)."""
        await asyncio.to_thread(_runtime)


class _Runtime:
    """The tokenizer and the inference session; safe to use from several threads."""

    def __init__(self) -> None:
        # The chunker's tokenizer, which neither truncates nor pads: windows are cut here.
        tokenizer = minilm_pieces.tokenizer()
        self._tokenizer = tokenizer
        self._cls = _token_id(tokenizer, "[CLS]")
        self._sep = _token_id(tokenizer, "[SEP]")
        options = ort.SessionOptions()
        # A run stays on the thread that asked for it; the cores are used by running as many
        # windows at once (see `_read_all`).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # The extended fusions on top of the basic ones made this graph (a PyTorch export)
        # slower, not faster, before and after the rewrite.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self._session = minilm_graph.open_session(model_path(), MODEL_ID, options)
        self._token_types = "token_type_ids" in {node.name for node in self._session.get_inputs()}
        self._output_name = self._session.get_outputs()[0].name
        self._cores = _cores()
        self._running = threading.BoundedSemaphore(self._cores)

    def embed(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        windows = [(row, piece) for row, e in enumerate(encodings) for piece in _windows(e.ids)]
        sums = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        read = self._read_all([piece for _, piece in windows])
        for (row, _), tokens in zip(windows, read, strict=True):
            sums[row] += _unit_rows(tokens.mean(axis=0, keepdims=True))[0]
        return _unit_rows(sums)

    def embed_spans(self, text: str, spans: Indices, given: Pieces | None) -> Vectors:
        document = minilm_pieces.read(text) if given is None else given
        ids, starts, ends = document.ids, document.starts, document.ends
        # The pieces of each span, [first, last): those that start and end inside it.
        pieces = np.stack(
            [
                np.searchsorted(starts, spans[:, 0], side="left"),
                np.searchsorted(ends, spans[:, 1], side="right"),
            ],
            axis=1,
        )
        sums = np.zeros((len(spans), DIMENSIONS), dtype=np.float64)
        windows = span_windows(pieces)
        read = self._read_all([ids[first:last] for first, last in windows])
        for (first, last), output in zip(windows, read, strict=True):
            tokens = output[1:-1]  # without [CLS] and [SEP]
            running = np.zeros((last - first + 1, DIMENSIONS), dtype=np.float64)
            np.cumsum(tokens, axis=0, out=running[1:])
            low = np.clip(pieces[:, 0], first, last) - first
            high = np.clip(pieces[:, 1], first, last) - first
            inside = high > low
            sums[inside] += running[high[inside]] - running[low[inside]]
        vectors = sums.astype(np.float32)
        empty = np.flatnonzero(pieces[:, 1] <= pieces[:, 0])
        if len(empty):
            vectors[empty] = self.embed([text[spans[row, 0] : spans[row, 1]] for row in empty])
        return _unit_rows(vectors)

    def _read_all(self, windows: Sequence[Window]) -> Iterator[npt.NDArray[np.float32]]:
        """The model's outputs for the windows, in order, read several at once: one run
        spread over every core leaves them idle at each of its many small steps, while
        separate runs keep them busy. No more runs than cores go at once, across every call,
        and the windows of concurrent calls interleave, so that a search's one query is not
        queued behind a whole file."""
        if len(windows) <= 1:
            yield from map(self._read, windows)
            return
        workers = ThreadPoolExecutor(min(self._cores, len(windows)), "embedding")
        try:
            yield from workers.map(self._read, windows)
        finally:  # a caller that stops early (it failed) leaves the rest unread
            workers.shutdown(cancel_futures=True)

    def _read(self, pieces: Window) -> npt.NDArray[np.float32]:
        """The model's output for one window: a vector for [CLS], each piece and [SEP]."""
        ids = np.empty((1, len(pieces) + 2), dtype=np.int64)
        ids[0, 0], ids[0, 1:-1], ids[0, -1] = self._cls, pieces, self._sep
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if self._token_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        with self._running:
            (tokens,) = self._session.run([self._output_name], feed)
        read: npt.NDArray[np.float32] = np.asarray(tokens[0], dtype=np.float32)
        return read


def _windows(ids: Sequence[int]) -> list[Sequence[int]]:
    """`ids` in as few windows as fit the model, of even length (the last is not a stub);
    an empty text is one empty window, whose [CLS] [SEP] still has a vector."""
    count = max(1, math.ceil(len(ids) / _WINDOW_PIECES))
    size = math.ceil(len(ids) / count)
    return [ids[start : start + size] for start in range(0, count * size, size)] if ids else [ids]


def span_windows(pieces: Indices) -> list[tuple[int, int]]:
    """The windows, [first, last) in pieces, that read every piece some span holds, once.

    The spans are taken in the order they start. Each reads the pieces it holds that no
    span before it has read (from where the last one ended, to its own end), split into as
    few windows as fit, of even length, as when it is embedded alone; fewer than
    `_MIN_WINDOW_PIECES` such pieces are read with the window before them instead."""
    windows: list[tuple[int, int]] = []
    done = 0
    for start, end in sorted((int(first), int(last)) for first, last in pieces if last > first):
        start = max(start, done)
        if end <= start:
            continue
        if end - start < _MIN_WINDOW_PIECES and windows and windows[-1][1] == start:
            start = windows.pop()[0]
        count = math.ceil((end - start) / _WINDOW_PIECES)
        size = math.ceil((end - start) / count)
        windows.extend((first, min(end, first + size)) for first in range(start, end, size))
        done = end
    return windows


def _unit_rows(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: Vectors = (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


def _token_id(tokenizer: Tokenizer, token: str) -> int:
    found = tokenizer.token_to_id(token)
    if found is None:
        raise RuntimeError(f"the embedding model's tokenizer has no {token} token")
    return found


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_loaded: tuple[int, _Runtime] | None = None
_loading = threading.Lock()


def _runtime() -> _Runtime:
    """The process's one runtime, loaded on first use. A child forked after loading makes
    its own: an inference session's threads do not survive a fork."""
    global _loaded
    loaded = _loaded
    if loaded is not None and loaded[0] == os.getpid():
        return loaded[1]
    with _loading:
        if _loaded is None or _loaded[0] != os.getpid():
            _loaded = (os.getpid(), _Runtime())
        return _loaded[1]
