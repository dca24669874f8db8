"""A file's text to the overlapping chunks file_search embeds and searches, as OpenAI's static
chunking strategy makes them: at most `max_tokens` tokens each, consecutive chunks sharing
`overlap_tokens` tokens.

Tokens are the bundled embedding model's own WordPiece tokens (its `tokenizer.json`, read by
the `tokenizers` library), so a chunk's count is what the model will see. The whole text is
tokenized once; the tokens' character offsets then place every cut, so a chunk is an exact
slice of the text (its `start`/`end`) and chunking costs one tokenizer pass, however many
windows there are.

Cuts fall between words when they can, so that a chunk tokenized again alone gives the same
tokens: the last tenth of each window is searched for a paragraph break, then a line break,
then any whitespace, then any word boundary (punctuation), latest first within each kind. Only
a single word longer than that tenth is cut inside, between two of its word pieces.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tokenizers import Tokenizer

from threadline.providers.embedders import minilm_files

MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096
DEFAULT_MAX_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400
# The share of a window, at its end, searched for a better place to cut.
_CUT_SEARCH_SHARE = 0.1
# How much text the tokenizer is given at a time (see `_Tokens`).
_SEGMENT_CHARS = 16 * 1024
# Where a segment may end: characters the tokenizer splits words at and never removes (unlike
# some of what `\s` matches, such as the control characters U+001C..U+001F).
_SEGMENT_END = re.compile(r"[ \n]")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    # Character offsets into the chunked text: `text == source[start:end]`.
    start: int
    end: int
    tokens: int


@functools.cache
def tokenizer() -> Tokenizer:
    """The embedding model's tokenizer, loaded once. Its file may ask for truncation and
    padding to the model's input size; counting needs every token and no padding."""
    loaded = Tokenizer.from_file(str(minilm_files.tokenizer_path()))
    loaded.no_truncation()
    loaded.no_padding()
    return loaded


def count_tokens(text: str) -> int:
    """How many word pieces the embedding model sees in `text` (no special tokens)."""
    return len(tokenizer().encode(text, add_special_tokens=False).ids)


def validate(max_tokens: int, overlap_tokens: int) -> None:
    if not MIN_MAX_TOKENS <= max_tokens <= MAX_MAX_TOKENS:
        raise ValueError(
            f"max_chunk_size_tokens must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}"
        )
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError("chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens")


def chunk(
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    validate(max_tokens, overlap_tokens)
    if not text.strip():
        return []
    tokens = _Tokens(text)
    count = len(tokens.offsets)
    chunks: list[Chunk] = []
    first = previous_last = 0
    search = max(1, int(max_tokens * _CUT_SEARCH_SHARE))
    while first < count:
        last = min(first + max_tokens, count)  # one past the window's last token
        if last < count:
            # Each chunk must reach further than the one before (a start moved back to its
            # word's start could otherwise find the same cut again).
            last = tokens.best_cut(max(first, previous_last), last, search)
        size = last - first
        if not tokens.word_start(first):
            last, size = _fit_retokenized(tokens, first, last, max_tokens)
        start, end = tokens.offsets[first][0], tokens.offsets[last - 1][1]
        chunks.append(Chunk(len(chunks), text[start:end], start, end, size))
        if last == count:
            break
        first, previous_last = tokens.next_first(first, last, overlap_tokens), last
    return chunks


class _Tokens:
    """One tokenizer pass over the text: where each token is, and what each gap between two
    tokens holds.

    The text is encoded in segments of about `_SEGMENT_CHARS`, each ending just after a space
    or a line break, in one batch: one long input costs the tokenizer more per character than
    several short ones, and it may spread a batch over several cores. No token spans a space
    or a line break, so the segments' tokens are exactly the whole text's."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offsets: list[tuple[int, int]] = []
        self.words: list[int | None] = []
        bounds = list(_segment_bounds(text))
        encodings = tokenizer().encode_batch(
            [text[start:end] for start, end in bounds], add_special_tokens=False
        )
        words_before = 0
        for (base, _), encoding in zip(bounds, encodings, strict=True):
            self.offsets.extend([(start + base, end + base) for start, end in encoding.offsets])
            ids = encoding.word_ids
            self.words.extend([None if w is None else w + words_before for w in ids])
            words_before += 1 + max((w for w in ids if w is not None), default=-1)

    def word_start(self, index: int) -> bool:
        """Whether token `index` begins a word (is not a '##' continuation piece)."""
        return index == 0 or self.words[index] != self.words[index - 1]

    def cut_rank(self, index: int) -> int:
        """How good a place the gap before token `index` is to end a chunk: 4 a paragraph
        break, 3 a line break, 2 whitespace, 1 between two words, 0 inside a word."""
        gap = self.text[self.offsets[index - 1][1] : self.offsets[index][0]]
        if "\n\n" in gap:
            return 4
        if "\n" in gap:
            return 3
        if any(c.isspace() for c in gap):
            return 2
        return 1 if self.word_start(index) else 0

    def best_cut(self, floor: int, last: int, search: int) -> int:
        """The end (exclusive) of a chunk that may run to `last` and must end after `floor`:
        the best-ranked gap from `search` tokens before `last` to `last`, the latest of
        those."""
        best, best_rank = last, self.cut_rank(last)
        for index in range(last - 1, max(floor, last - search - 1), -1):
            if best_rank == 4:
                break
            rank = self.cut_rank(index)
            if rank > best_rank:
                best, best_rank = index, rank
        return best

    def next_first(self, first: int, last: int, overlap: int) -> int:
        """Where the chunk after [first, last) starts: `overlap` tokens before `last`, moved
        back to the start of its word so that the chunk does not open with a word's tail (as
        long as chunks still move forward, and unless no overlap was asked for)."""
        wanted = max(last - overlap, first + 1)
        if overlap == 0:
            return wanted
        start = wanted
        while start > first + 1 and not self.word_start(start):
            start -= 1
        return start if self.word_start(start) else wanted


def _segment_bounds(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(text):
        found = _SEGMENT_END.search(text, start + _SEGMENT_CHARS)
        end = found.end() if found else len(text)
        yield start, end
        start = end


def _fit_retokenized(tokens: _Tokens, first: int, last: int, max_tokens: int) -> tuple[int, int]:
    """A chunk that starts inside a word (only after a word too long to cut anywhere else)
    may be split into more pieces when tokenized alone, since its first piece is then read as
    a word's start: trims its end until it fits, and returns that end and the chunk's count
    as tokenized alone."""
    while True:
        start, end = tokens.offsets[first][0], tokens.offsets[last - 1][1]
        size = count_tokens(tokens.text[start:end])
        if size <= max_tokens or last - first == 1:
            return last, size
        last = max(first + 1, last - (size - max_tokens))
