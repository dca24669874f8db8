"""The bundled embedder: all-MiniLM-L6-v2 with int8 weights, run in process.

onnxruntime runs the model (a 23 MB graph, no PyTorch), and Hugging Face's `tokenizers`
(WordPiece in Rust, from the model's own `tokenizer.json`) splits the text, so the pieces
are exactly those the model was trained on. The sentence vector is made as
sentence-transformers makes it for this model: the mean of the token vectors under the
attention mask, scaled to unit length.

The model reads at most `MAX_TOKENS` word pieces. A longer text is not cut to its start:
it is split into as few windows as fit, of even length, each embedded on its own, and the
text's vector is the mean of theirs; so the end of a long chunk still counts in search.

Texts are embedded in batches of texts of similar length (sorted by their count of word
pieces), so that little is spent on padding. The work runs in a worker thread, leaving the
event loop free; one batch runs at a time, on as many threads as the process has cores
(more batches at once would only share the same cores), and the batches of concurrent
calls interleave, so a search's one query is not queued behind a whole file.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from tokenizers import Tokenizer

from threadline.providers.embedders.base import EmbeddingKind, Vectors
from threadline.providers.embedders.minilm_files import (
    DIMENSIONS,
    MAX_TOKENS,
    MODEL_ID,
    model_path,
    tokenizer_path,
)

# Texts per batch: past a few dozen, a bigger batch no longer runs faster per text.
BATCH_SIZE = 32
# Word pieces in one window, beside its [CLS] and [SEP].
_WINDOW_PIECES = MAX_TOKENS - 2


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

    async def prepare(self) -> None:
        """Load the model now (a fraction of a second) rather than in the first search."""
        await asyncio.to_thread(_runtime)


class _Runtime:
    """The tokenizer and the inference session; safe to use from several threads."""

    def __init__(self) -> None:
        tokenizer = Tokenizer.from_file(str(tokenizer_path()))
        # Windows are cut and padded here, not by the tokenizer's saved settings.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._cls = _token_id(tokenizer, "[CLS]")
        self._sep = _token_id(tokenizer, "[SEP]")
        self._pad = _token_id(tokenizer, "[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = _cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Constant folding turns the int8 weights into float ones once, at load; the extended
        # fusions on top made this graph (a PyTorch export) slower, not faster.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        # Idle pool threads sleep rather than spin: the cores are shared with the event loop
        # and the rest of the service.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {node.name for node in self._session.get_inputs()}
        self._output_name = self._session.get_outputs()[0].name
        self._turn = threading.Lock()

    def embed(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        windows: list[list[int]] = []
        owners: list[int] = []
        for owner, encoding in enumerate(encodings):
            for piece in _windows(encoding.ids):
                windows.append([self._cls, *piece, self._sep])
                owners.append(owner)
        window_vectors = self._embed_windows(windows)
        sums = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        np.add.at(sums, np.asarray(owners), window_vectors)
        return _unit_rows(sums)

    def _embed_windows(self, windows: list[list[int]]) -> Vectors:
        vectors = np.empty((len(windows), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(windows)), key=lambda index: len(windows[index]))
        for start in range(0, len(order), BATCH_SIZE):
            members = order[start : start + BATCH_SIZE]
            vectors[members] = self._embed_batch([windows[index] for index in members])
        return vectors

    def _embed_batch(self, windows: list[list[int]]) -> Vectors:
        width = max(len(window) for window in windows)
        ids = np.full((len(windows), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = window
            mask[row, : len(window)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        with self._turn:
            (tokens,) = self._session.run([self._output_name], feed)
        return _unit_rows(_mean_pool(np.asarray(tokens, dtype=np.float32), mask))


def _windows(ids: Sequence[int]) -> list[Sequence[int]]:
    """`ids` in as few windows as fit the model, of even length (the last is not a stub);
    an empty text is one empty window, whose [CLS] [SEP] still has a vector."""
    count = max(1, math.ceil(len(ids) / _WINDOW_PIECES))
    size = math.ceil(len(ids) / count)
    return [ids[start : start + size] for start in range(0, count * size, size)] if ids else [ids]


def _mean_pool(tokens: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> Vectors:
    weights = mask[:, :, np.newaxis].astype(np.float32)
    summed = (tokens * weights).sum(axis=1)
    pooled: Vectors = summed / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled


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
