"""A document's word pieces by the bundled model's tokenizer, made once and used twice.

Ingestion needs a document's pieces twice: the chunker cuts the text between them
(`tools/file_search/chunk.py`), and the bundled embedder reads them in windows
(`local_minilm.py`). Both take them from `read`, so that the chunker's pieces can be handed to
the embedder rather than the whole document being tokenized again.

The text is encoded in segments of about `_SEGMENT_CHARS`, each ending just after a space or
a line break, in one batch: one long input costs the tokenizer more per character than several
short ones, and it may spread a batch over several cores. No piece spans a space or a line
break, so the segments' pieces are exactly the whole text's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from threadline.providers.embedders.minilm_files import tokenizer_path

_SEGMENT_CHARS = 16 * 1024
# Where a segment may end: characters the tokenizer splits words at and never removes (unlike
# some of what `\s` matches, such as the control characters U+001C..U+001F).
_SEGMENT_END = re.compile(r"[ \n]")

Indices = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Pieces:
    """The word pieces of a text of `length` characters, in order (no special tokens): each
    piece's vocabulary id, the characters `[start, end)` it was read from, and the number of
    the word it belongs to (a word's pieces share it; `-1` for none)."""

    length: int
    ids: Indices
    starts: Indices
    ends: Indices
    words: Indices

    def __len__(self) -> int:
        return len(self.ids)


@functools.cache
def tokenizer() -> Tokenizer:
    """The bundled model's tokenizer, loaded once. Its file may ask for truncation and padding
    to the model's input size; counting and windowing need every piece and no padding."""
    loaded = Tokenizer.from_file(str(tokenizer_path()))
    loaded.no_truncation()
    loaded.no_padding()
    return loaded


def read(text: str) -> Pieces:
    """Every word piece of `text`, with where it is."""
    bounds = list(_segments(text))
    encodings = tokenizer().encode_batch(
        [text[start:end] for start, end in bounds], add_special_tokens=False
    )
    ids: list[Indices] = [np.zeros(0, np.int64)]
    offsets: list[Indices] = [np.zeros((0, 2), np.int64)]
    words: list[Indices] = [np.zeros(0, np.int64)]
    words_before = 0
    for (base, _), encoding in zip(bounds, encodings, strict=True):
        ids.append(np.array(encoding.ids, dtype=np.int64))
        offsets.append(np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2) + base)
        numbers = np.array([-1 if w is None else w for w in encoding.word_ids], dtype=np.int64)
        words.append(np.where(numbers >= 0, numbers + words_before, -1))
        words_before += 1 + int(numbers.max(initial=-1))
    joined = np.concatenate(offsets)
    return Pieces(
        len(text),
        np.concatenate(ids),
        np.ascontiguousarray(joined[:, 0]),
        np.ascontiguousarray(joined[:, 1]),
        np.concatenate(words),
    )


def _segments(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(text):
        found = _SEGMENT_END.search(text, start + _SEGMENT_CHARS)
        end = found.end() if found else len(text)
        yield start, end
        start = end
