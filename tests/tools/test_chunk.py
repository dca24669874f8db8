"""Chunking with the bundled embedding model's tokenizer: chunks are exact slices of the text,
never over the limit when tokenized alone, overlapping by the asked number of tokens, cut at
whitespace where the window allows it."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from threadline.tools.file_search.chunk import Chunk, chunk, count_tokens

pytestmark = pytest.mark.timeout(120)

# Words the tokenizer reads as one word piece each (checked below), so that a text of them
# has exactly as many tokens as words.
ONE_PIECE = [
    *("the", "of", "and", "to", "in", "is", "was", "for", "on", "that"),
    *("with", "as", "by", "at", "from", "it", "his", "an", "are", "be"),
]


def words(count: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(ONE_PIECE) for _ in range(count))


def assert_well_formed(text: str, chunks: list[Chunk], max_tokens: int) -> None:
    """Every chunk is the slice it says, tokenizes alone to its count, at most the limit; the
    chunks cover every token of the text, in order (what lies between them is whitespace or
    characters the tokenizer drops, such as control characters)."""
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for piece in chunks:
        assert piece.text == text[piece.start : piece.end]
        assert piece.text == piece.text.strip()
        assert piece.tokens == count_tokens(piece.text) <= max_tokens
    assert count_tokens(text[: chunks[0].start]) == 0
    assert count_tokens(text[chunks[-1].end :]) == 0
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start and before.end < after.end
        assert count_tokens(text[before.end : after.start]) == 0


def test_one_piece_words_are_one_token_each() -> None:
    for word in ONE_PIECE:
        assert count_tokens(word) == 1, word
    assert count_tokens(words(1000)) == 1000


def test_empty_and_blank_text_make_no_chunks() -> None:
    assert chunk("") == []
    assert chunk(" \n\t \n") == []


def test_a_short_text_is_one_chunk_without_its_outer_whitespace() -> None:
    text = "\n  Tokenizers split words into pieces: unbelievably so.  \n"
    (only,) = chunk(text)
    assert only.index == 0
    assert only.text == "Tokenizers split words into pieces: unbelievably so."
    assert (only.start, only.end) == (3, len(text) - 3)
    assert only.tokens == count_tokens(only.text) > len(only.text.split())


@pytest.mark.parametrize(
    ("max_tokens", "overlap_tokens"),
    [(99, 0), (4097, 0), (800, -1), (800, 401), (100, 51), (101, 51)],
)
def test_bounds_are_validated(max_tokens: int, overlap_tokens: int) -> None:
    with pytest.raises(ValueError):
        chunk("some text", max_tokens, overlap_tokens)


@pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(100, 0), (100, 50), (4096, 2048)])
def test_the_bounds_themselves_are_allowed(max_tokens: int, overlap_tokens: int) -> None:
    assert len(chunk("some text", max_tokens, overlap_tokens)) == 1


@pytest.mark.parametrize(
    ("count", "max_tokens", "overlap_tokens"),
    [(10_000, 800, 400), (10_000, 800, 0), (5_000, 300, 100), (801, 800, 400), (800, 800, 400)],
)
def test_a_long_text_makes_the_expected_number_of_chunks(
    count: int, max_tokens: int, overlap_tokens: int
) -> None:
    """Between one-token words every gap is whitespace, so every window is full and each
    chunk starts `max_tokens - overlap_tokens` tokens after the one before."""
    text = words(count)
    chunks = chunk(text, max_tokens, overlap_tokens)
    step = max_tokens - overlap_tokens
    expected = 1 + max(0, math.ceil((count - max_tokens) / step))
    assert len(chunks) == expected
    assert all(c.tokens == max_tokens for c in chunks[:-1])
    assert_well_formed(text, chunks, max_tokens)


def test_consecutive_chunks_share_the_overlap() -> None:
    text = words(3000, seed=11)
    chunks = chunk(text, 500, 120)
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        shared = text[after.start : before.end]
        assert before.text.endswith(shared) and after.text.startswith(shared)
        assert count_tokens(shared) == 120


def test_no_overlap_means_adjacent_chunks() -> None:
    text = words(2000)
    chunks = chunk(text, 400, 0)
    for before, after in itertools.pairwise(chunks):
        assert text[before.end : after.start] == " "
    assert sum(c.tokens for c in chunks) == 2000


def test_cuts_prefer_line_ends_near_the_limit() -> None:
    """Lines of 30 tokens: a window of 200 tokens has a line end within its last 20 tokens,
    so every chunk but the last ends at one."""
    lines = [words(29, seed=n) + "." for n in range(200)]
    text = "\n".join(lines)
    assert all(count_tokens(line) == 30 for line in lines)
    chunks = chunk(text, 200, 60)
    for piece in chunks[:-1]:
        assert text[piece.end] == "\n"
        assert piece.tokens == 180  # six whole lines
    assert_well_formed(text, chunks, 200)


def test_a_paragraph_break_wins_over_a_later_line_end() -> None:
    first = words(95, seed=1) + "\n\n" + words(3, seed=2) + "\n" + words(150, seed=3)
    chunks = chunk(first, 100, 0)
    assert chunks[0].tokens == 95
    assert first[chunks[0].end : chunks[0].end + 2] == "\n\n"


def test_punctuation_without_spaces_is_cut_between_words() -> None:
    text = ".".join(ONE_PIECE * 40)  # 'the.of.and...' one word per piece, no whitespace
    chunks = chunk(text, 100, 20)
    assert len(chunks) > 5
    assert_well_formed(text, chunks, 100)


def test_any_text_is_chunked_into_exact_slices_within_the_limit() -> None:
    """Words of random letters (many word pieces each, some longer than the cut search
    reaches), accents, CJK, emoji and control characters, with every kind of gap."""
    rng = random.Random(2024)
    alphabet = "abcdefghijklmnopqrstuvwxyzéüñ"
    pieces: list[str] = []
    for _ in range(4000):
        kind = rng.random()
        if kind < 0.7:
            pieces.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))))
        elif kind < 0.8:
            pieces.append("".join(rng.choice("日本語の文章です") for _ in range(rng.randint(1, 9))))
        elif kind < 0.9:
            pieces.append(rng.choice(["🙂", "!", "...", "(x)", "\x07", "--", "3.14"]))
        else:
            pieces.append(rng.choice(["\n", "\n\n", "\t", "   "]))
        pieces.append(rng.choice([" ", " ", "", "\n"]))
    text = "".join(pieces)
    for max_tokens, overlap_tokens in [(100, 50), (100, 0), (256, 64)]:
        chunks = chunk(text, max_tokens, overlap_tokens)
        assert len(chunks) > 10
        assert_well_formed(text, chunks, max_tokens)


def test_one_word_longer_than_a_window_is_cut_between_its_pieces() -> None:
    word = "".join(random.Random(5).choice("qxzvkjw") for _ in range(99))  # many pieces
    text = " ".join([word] * 40)
    assert count_tokens(word) > 20
    chunks = chunk(text, 100, 30)
    assert_well_formed(text, chunks, 100)
