"""A file's text to the overlapping chunks file_search embeds and searches, as OpenAI's static
chunking strategy makes them: at most `max_tokens` tokens each, consecutive chunks sharing
`overlap_tokens` tokens.

Tokens are the bundled embedding model's own WordPiece tokens (its `tokenizer.json`, read by
the `tokenizers` library), so a chunk's count is what the model will see. The whole text is
tokenized once; the tokens' character offsets then place every cut, so a chunk is an exact
slice of the text (its `start`/`end`) and chunking costs one tokenizer pass, however many
windows there are. A caller that has the text's pieces already (ingestion, which hands the
same pieces on to the embedder) passes them in, and chunking costs no tokenizer pass at all.

Cuts fall between words when they can, so that a chunk tokenized again alone gives the same
tokens: the last tenth of each window is searched for a paragraph break, then a line break,
then any whitespace, then any word boundary (punctuation), latest first within each kind. Only
a single word longer than that tenth is cut inside, between two of its word pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.providers.embedders import minilm_pieces
from threadline.providers.embedders.minilm_pieces import Pieces, tokenizer

MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096
DEFAULT_MAX_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400
# The share of a window, at its end, searched for a better place to cut.
_CUT_SEARCH_SHARE = 0.1


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    # Character offsets into the chunked text: `text == source[start:end]`.
    start: int
    end: int
    tokens: int


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
    *,
    pieces: Pieces | None = None,
) -> list[Chunk]:
    """`pieces`, when given, are `text`'s as `minilm_pieces.read` makes them."""
    validate(max_tokens, overlap_tokens)
    if pieces is not None and pieces.length != len(text):
        raise ValueError("the pieces given are not those of the text")
    if not text.strip():
        return []
    tokens = _Tokens(text, minilm_pieces.read(text) if pieces is None else pieces)
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
    """The text's pieces as the chunker looks them up (one at a time, so in lists), and what
    each gap between two pieces holds."""

    def __init__(self, text: str, pieces: Pieces) -> None:
        self.text = text
        self.offsets = list(zip(pieces.starts.tolist(), pieces.ends.tolist(), strict=True))
        self.words: list[int] = pieces.words.tolist()

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
