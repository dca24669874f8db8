"""The embedders file_search uses: the bundled model run for real (its graph's rewrite and
cache, a document's chunks embedded together), an upstream's `/embeddings` over real HTTP
(the scripted model server), and the choice between them that `THREADLINE_EMBEDDING_MODEL`
makes."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.scripted_model import Fail, ScriptedModelServer, WrongContentType, hashed_embedding
from tokenizers import Tokenizer

from threadline.config import Settings
from threadline.providers.embedders import minilm_graph, minilm_pieces
from threadline.providers.embedders.base import (
    Embedder,
    EmbeddingError,
    Vectors,
    supports_spans,
)
from threadline.providers.embedders.local_minilm import LocalMiniLM, span_windows
from threadline.providers.embedders.minilm_files import (
    DIMENSIONS,
    MAX_TOKENS,
    MODEL_ID,
    model_path,
    tokenizer_path,
)
from threadline.providers.embedders.select import embedder_for
from threadline.providers.embedders.upstream import UpstreamEmbedder, azure_openai_embedder


def _embed(embedder: Embedder, texts: Sequence[str], **options: Any) -> Vectors:
    async def embed() -> Vectors:
        try:
            return await embedder.embed(texts, **options)
        finally:
            if isinstance(embedder, UpstreamEmbedder):
                await embedder.close()

    return asyncio.run(embed())


def _assert_unit_rows(vectors: Vectors, rows: int, dimensions: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (rows, dimensions)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# The bundled model.

# Cosine similarities sentence-transformers' documentation gives for all-MiniLM-L6-v2 (the
# float32 model): the int8 one must stay near them, and rank the pairs as they do. (Its matrix
# products run in int8, its activations quantized as it runs, which moves a similarity by a
# few hundredths at most.)
_REFERENCE = [
    ("The weather is lovely today.", "It's so sunny outside!", 0.6660),
    ("The weather is lovely today.", "He drove to the stadium.", 0.1046),
    ("It's so sunny outside!", "He drove to the stadium.", 0.1411),
    ("The new movie is awesome", "The new movie is so great", 0.8939),
    ("The new movie is awesome", "The dog plays in the garden", 0.0543),
    ("The cat sits outside", "The dog plays in the garden", 0.2838),
    ("A man is playing guitar", "A woman watches TV", -0.0327),
]


def test_the_bundled_model_agrees_with_the_published_similarities() -> None:
    texts = sorted({text for pair in _REFERENCE for text in pair[:2]})
    vectors = _embed(LocalMiniLM(), texts)
    _assert_unit_rows(vectors, len(texts), DIMENSIONS)
    row = {text: vectors[index] for index, text in enumerate(texts)}
    ours = [float(row[first] @ row[second]) for first, second, _ in _REFERENCE]
    for similarity, (_, _, published) in zip(ours, _REFERENCE, strict=True):
        assert similarity == pytest.approx(published, abs=0.035)
    published_order = sorted(range(len(_REFERENCE)), key=lambda index: _REFERENCE[index][2])
    assert sorted(range(len(ours)), key=lambda index: ours[index]) == published_order


def _bundled_graph_vectors(texts: Sequence[str]) -> Vectors:
    """The texts embedded by the bundled graph itself, as shipped (the vectors stored before
    the graph was rewritten)."""
    session = ort.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rows = []
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        feed["token_type_ids"] = np.zeros_like(ids)
        (tokens,) = session.run(None, feed)
        rows.append(tokens[0].mean(axis=0))
    vectors = np.array(rows, dtype=np.float32)
    unit: Vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def test_the_rewritten_graph_keeps_the_bundled_ones_vectors() -> None:
    """The vectors keep the model id of those stored before the rewrite, so they must stay
    comparable with them; and the graph run is the rewritten one, cached."""
    texts = [text for pair in _REFERENCE for text in pair[:2]] + _TOPICS
    ours = _embed(LocalMiniLM(), texts)
    cosines = np.sum(ours * _bundled_graph_vectors(texts), axis=1)
    assert cosines.min() >= 0.99
    cached = minilm_graph.cache_file(model_path(), MODEL_ID)
    assert cached is not None and cached.is_file()
    operators = [node.op_type for node in onnx.load(cached).graph.node]
    assert "IsNaN" not in operators
    # 6 layers of 6 products with constant weights; the first layers' narrowing ones stay float.
    assert operators.count("MatMulInteger") == 36 - minilm_graph.FLOAT_NARROWING_PRODUCTS


def test_a_question_is_nearest_the_passage_that_answers_it() -> None:
    embedder = LocalMiniLM()
    assert embedder.model == MODEL_ID
    passages = [
        "The weather in Paris is mild in spring.",
        "Steps to change your account password: open Settings, then Security.",
        "Our quarterly revenue grew by twelve percent.",
    ]
    stored = _embed(embedder, passages)
    [query] = _embed(embedder, ["How do I reset my password?"], kind="query")
    scores = stored @ query
    assert int(np.argmax(scores)) == 1
    assert scores[1] > scores[0] + 0.2


def test_nothing_to_embed_and_an_empty_text() -> None:
    embedder = LocalMiniLM()
    assert _embed(embedder, []).shape == (0, DIMENSIONS)
    _assert_unit_rows(_embed(embedder, [""]), 1, DIMENSIONS)


def test_the_same_texts_give_the_same_vectors() -> None:
    embedder = LocalMiniLM()
    texts = [f"Paragraph {n} of the handbook covers topic {n * 7}." for n in range(40)]
    texts.append("A much longer paragraph, " * 30)
    first, second = _embed(embedder, texts), _embed(embedder, texts)
    np.testing.assert_array_equal(first, second)
    # Each window runs alone, so a text's vector does not depend on the texts beside it.
    np.testing.assert_array_equal(_embed(embedder, [texts[3]])[0], first[3])


def _pieces(text: str) -> int:
    from tokenizers import Tokenizer

    from threadline.providers.embedders.minilm_files import tokenizer_path

    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    tokenizer.no_truncation()
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def test_the_end_of_a_long_text_counts() -> None:
    embedder = LocalMiniLM()
    head = " ".join(
        f"In the garden, bed {n} holds tomatoes, basil and marigolds watered each morning."
        for n in range(30)
    )
    tail = (
        " The rocket launch was delayed because a sensor on the second stage reported "
        "a fuel pressure fault, and engineers replaced the valve before the countdown."
    ) * 9
    assert _pieces(head) > 2 * MAX_TOKENS
    assert _pieces(head + tail) > 3 * MAX_TOKENS
    whole, head_only, query = _embed(
        embedder, [head + tail, head, "Why was the rocket launch delayed?"]
    )
    assert float(whole @ head_only) < 0.99
    assert float(query @ whole) > float(query @ head_only) + 0.1


def test_concurrent_calls_each_get_their_own_vectors() -> None:
    embedder = LocalMiniLM()
    groups = [[f"Group {g}, sentence {n}: the {g} fox jumps." for n in range(9)] for g in "abc"]

    async def all_at_once() -> list[Vectors]:
        return list(await asyncio.gather(*(embedder.embed(group) for group in groups)))

    together = asyncio.run(all_at_once())
    for group, vectors in zip(groups, together, strict=True):
        apart = _embed(embedder, group)
        assert np.all(np.sum(vectors * apart, axis=1) > 0.995)


# A document's chunks embedded together.

# Paragraphs on unrelated subjects: a document whose chunks differ, and each paragraph's
# question, answered by its third sentence.
_TOPICS = [
    "Sourdough bread rises without any yeast bought from a shop. A starter of flour and water "
    "is left on the counter for a week, fed every day, until the wild yeasts and lactic "
    "bacteria that live on the grain take hold. The bacteria make lactic and acetic acids, "
    "which give the loaf its sour taste and keep it from going stale for several days. Bakers "
    "mix a spoonful of the starter into the dough the night before, let it rise slowly in a "
    "cool room, shape it at dawn and bake it in a very hot oven, often inside a covered cast "
    "iron pot so that the steam keeps the crust soft long enough for the loaf to expand.",
    "Volcanoes form where molten rock from the mantle finds a way up through the crust. Along "
    "the Pacific ring of fire, one tectonic plate slides beneath another, and the water it "
    "carries down lowers the melting point of the rock above it. That magma is thick and rich "
    "in silica, so gas cannot escape from it easily, and the pressure builds until the "
    "mountain explodes, as Mount St. Helens did in 1980. In Hawaii the magma rises from a hot "
    "spot in the middle of a plate instead; it is runny basalt, and it pours out in rivers of "
    "lava that add new land to the islands year after year.",
    "The Sicilian Defence is the most popular reply to the king's pawn opening in chess. Black "
    "answers e4 with the c-pawn rather than mirroring White's move, giving up a share of the "
    "centre for an unbalanced position. Grandmasters choose it when they need to win with the "
    "black pieces, because the asymmetry leads to sharp positions where both sides attack on "
    "opposite wings. Its many branches, such as the Najdorf and the Dragon, have been analysed "
    "twenty moves deep, and club players spend years memorising lines that a computer can "
    "refute in seconds.",
    "A vaccine trains the immune system to recognise a germ before the body ever meets it. It "
    "carries a harmless piece of the pathogen, often a surface protein, or instructions for "
    "the body's own cells to build that protein for a short while. White blood cells learn "
    "the shape of it, and memory cells keep that knowledge for years, so that a later "
    "infection is fought off within days instead of weeks. Booster doses remind the memory "
    "cells when their numbers fade, and herd immunity protects people who cannot be "
    "vaccinated themselves.",
    "A government bond is a loan from investors to the state, repaid with interest on a fixed "
    "schedule. When central banks raise their rates, newly issued bonds pay more, so the price "
    "of older bonds with lower coupons falls on the market. This is why a portfolio of long "
    "dated bonds can lose value in a year of rising rates even though every payment arrives "
    "on time. Investors watch the yield curve, which plots the interest paid against the "
    "length of the loan; when short loans pay more than long ones, many expect a recession.",
    "Keeping a bicycle chain clean makes the drivetrain last far longer. Grit picked up from "
    "wet roads mixes with the oil into a grinding paste that wears the chain, the cassette "
    "and the chainrings. A rider should wipe the chain with a rag after a muddy ride, scrub "
    "it with degreaser every few weeks, and apply a drop of fresh lubricant to each roller, "
    "wiping off the excess so that dust does not stick to it. A chain checker tool shows when "
    "the links have stretched, and replacing the chain in time saves the more expensive "
    "cogs from wearing out with it.",
    "Humpback whales travel thousands of kilometres between their feeding and breeding "
    "grounds each year. In summer they feed on krill and small fish in the cold polar seas, "
    "building up thick layers of blubber. In winter they swim to warm tropical waters to "
    "mate and give birth, and they eat almost nothing during the months they spend there. "
    "The males sing long, complex songs that change slowly from season to season, and "
    "scientists who record them have found that a new song can spread across an entire ocean "
    "basin within two years.",
    "Roman aqueducts carried fresh water into cities from springs many kilometres away. "
    "Engineers laid the channels on a very gentle, steady slope, sometimes only a few "
    "centimetres of drop for every hundred metres, so that gravity alone kept the water "
    "flowing. Where a valley crossed the route, they built the tall stone arcades that "
    "tourists photograph today, such as the Pont du Gard in southern France. Most of the "
    "length, however, ran underground in covered channels, which kept the water cool and "
    "clean and protected it from enemies.",
    "Honey bees tell each other where flowers are with a dance. A forager that has found a "
    "rich patch of blossoms returns to the hive and walks a figure of eight on the vertical "
    "comb, waggling her body along the middle line. The angle of that line from the vertical "
    "gives the direction of the flowers relative to the sun, and the length of the waggle "
    "tells how far away they are. Her sisters follow her in the dark, sense the vibrations "
    "and the scent of nectar she carries, and then fly straight to the source, sometimes "
    "several kilometres from home.",
    "A refrigerator keeps food cold by moving heat rather than by making cold. A compressor "
    "squeezes a refrigerant gas, which heats up and gives off that heat through the coils at "
    "the back of the appliance. The liquid then passes through a narrow valve into the "
    "evaporator inside, where the sudden drop in pressure makes it boil and absorb heat from "
    "the food compartment. The gas returns to the compressor and the cycle repeats, driven "
    "by a thermostat that switches the motor on whenever the temperature inside climbs too "
    "high.",
    "The printing press changed Europe in the fifteenth century. Johannes Gutenberg combined "
    "movable metal type, an oil based ink and a screw press adapted from wine making. With "
    "these, a small workshop could produce hundreds of identical pages a day, where a scribe "
    "copying by hand might finish a single book in months. Within fifty years millions of "
    "books were circulating, literacy spread beyond monasteries and courts, and pamphlets "
    "carried the arguments of the Reformation faster than any authority could suppress them.",
    "Tomatoes grow best in full sun with steady watering. Gardeners start the seeds indoors "
    "about eight weeks before the last frost and plant the seedlings out deep, burying part "
    "of the stem so that it grows extra roots. Uneven watering, a flood after a dry spell, "
    "makes the fruit split and causes blossom end rot, a dark sunken patch at the bottom of "
    "the tomato. Tying the vines to stakes keeps the fruit off the damp soil, and pinching out "
    "the side shoots directs the plant's energy into fewer, larger tomatoes.",
]
_QUESTIONS = [
    "Why does sourdough taste sour?",
    "Why do some volcanoes explode violently?",
    "Why do grandmasters play the Sicilian with black?",
    "How does a vaccine teach white blood cells?",
    "Why do old bond prices fall when interest rates go up?",
    "How should I clean and oil my bike chain?",
    "What do humpback whales do in the tropics in winter?",
    "How did Roman engineers keep water flowing by gravity?",
    "How does the waggle dance show the direction to flowers?",
    "What happens to the refrigerant in the evaporator?",
    "How fast could a print workshop make pages compared with a scribe?",
    "What causes tomatoes to split and get blossom end rot?",
]


def _document() -> tuple[str, list[tuple[int, int]]]:
    """The paragraphs as one text, and where each paragraph's third sentence is."""
    text, answers = "", []
    for paragraph in _TOPICS:
        sentences = paragraph.split(". ")
        start = len(text) + len(". ".join(sentences[:2])) + 2
        answers.append((start, start + len(sentences[2])))
        text += paragraph + "\n\n"
    return text, answers


def _embed_spans(text: str, spans: Sequence[tuple[int, int]]) -> Vectors:
    return asyncio.run(LocalMiniLM().embed_spans(text, spans))


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "near"), [(800, 400, 0.9), (300, 150, 0.9), (200, 100, 0.85)]
)
def test_chunks_embedded_together_match_chunks_embedded_alone(
    max_tokens: int, overlap: int, near: float
) -> None:
    """A chunk's pieces read in the document's windows, not its own, give a vector near the
    one it has alone; as near as the chunk's own vector is to itself read in other windows
    (about 0.9 in this text of short paragraphs on unrelated subjects). The shorter the chunk,
    the further its pieces' windows are from its own."""
    from threadline.tools.file_search.chunk import chunk

    text, answers = _document()
    chunks = chunk(text, max_tokens, overlap)
    assert len(chunks) >= 3
    together = _embed_spans(text, [(piece.start, piece.end) for piece in chunks])
    _assert_unit_rows(together, len(chunks), DIMENSIONS)
    alone = _embed(LocalMiniLM(), [piece.text for piece in chunks])
    cosines = np.sum(together * alone, axis=1)
    assert cosines.min() >= near, cosines
    # Each question finds a chunk with (some of) its answer in it, by either vector.
    queries = _embed(LocalMiniLM(), _QUESTIONS, kind="query")
    for query, (start, end) in zip(queries, answers, strict=True):
        answering = {n for n, piece in enumerate(chunks) if piece.start < end and start < piece.end}
        assert int(np.argmax(together @ query)) in answering
        assert int(np.argmax(alone @ query)) in answering


def test_chunks_that_do_not_overlap_are_read_as_when_alone() -> None:
    """Windows are laid at the chunks' edges: chunks side by side are read in exactly the
    windows each is read in alone, so the vectors differ only by rounding and by the [CLS]
    and [SEP] that a chunk embedded alone averages in."""
    text, _ = _document()
    ends = [text.index("\n\n", start) for start in range(0, len(text) - 2, len(text) // 4)]
    spans = []
    start = 0
    for end in sorted(set(ends)):
        spans.append((start, end))
        start = end + 2
    together = _embed_spans(text, spans)
    alone = _embed(LocalMiniLM(), [text[start:end] for start, end in spans])
    assert np.sum(together * alone, axis=1).min() > 0.995


def test_spans_in_any_order_with_repeats_and_blanks() -> None:
    text, answers = _document()
    blank = (text.index("\n\n"), text.index("\n\n") + 2)
    spans = [answers[3], (0, len(text)), answers[3], blank, answers[0], (5, 5)]
    vectors = _embed_spans(text, spans)
    _assert_unit_rows(vectors, len(spans), DIMENSIONS)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    # A span with no word piece in it is embedded as its text alone, like an empty text.
    [empty] = _embed(LocalMiniLM(), [""])
    np.testing.assert_allclose(vectors[3], empty, atol=1e-6)
    np.testing.assert_allclose(vectors[5], empty, atol=1e-6)
    whole = _embed(LocalMiniLM(), [text])[0]
    assert float(vectors[1] @ whole) > 0.95
    assert _embed_spans(text, []).shape == (0, DIMENSIONS)
    assert _embed_spans("", [(0, 0)]).shape == (1, DIMENSIONS)


@pytest.mark.parametrize("span", [(-1, 3), (4, 2), (0, 10_000)])
def test_a_span_outside_the_text_is_refused(span: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="every span"):
        _embed_spans("short text", [(0, 5), span])


def test_a_document_read_in_segments_has_the_pieces_of_the_whole() -> None:
    """`minilm_pieces.read` encodes a long text in segments; its pieces are those of the text
    encoded at once, with the same offsets and word numbers."""
    rng = random.Random(11)
    words = ["river", "unbelievably", "naïve", "日本語", "3.14", "(x)", "🙂", "tokenizers"]
    text = "".join(rng.choice(words) + rng.choice([" ", "\n", "\n\n", ", "]) for _ in range(12_000))
    assert len(text) > 3 * 16 * 1024
    pieces = minilm_pieces.read(text)
    whole = minilm_pieces.tokenizer().encode(text, add_special_tokens=False)
    assert pieces.length == len(text) and len(pieces) == len(whole.ids)
    assert pieces.ids.tolist() == whole.ids
    assert list(zip(pieces.starts.tolist(), pieces.ends.tolist(), strict=True)) == whole.offsets
    # Word numbers restart in each segment but are renumbered to run on across them.
    numbers = pieces.words.tolist()
    assert [a != b for a, b in itertools.pairwise(numbers)] == [
        a != b for a, b in itertools.pairwise(whole.word_ids)
    ]
    assert numbers == sorted(numbers) and numbers[0] == 0


def test_spans_embedded_with_the_chunkers_pieces_are_embedded_as_without() -> None:
    """The pieces the chunker cut at, handed on, give the very vectors the embedder gets
    tokenizing the text itself; pieces of another text are refused."""
    from threadline.tools.file_search.chunk import chunk

    text, _ = _document()
    pieces = minilm_pieces.read(text)
    chunks = chunk(text, 200, 100, pieces=pieces)
    assert chunks == chunk(text, 200, 100)
    spans = [(piece.start, piece.end) for piece in chunks]
    given = asyncio.run(LocalMiniLM().embed_spans(text, spans, pieces=pieces))
    np.testing.assert_array_equal(given, _embed_spans(text, spans))
    other = minilm_pieces.read(text + " more")
    with pytest.raises(ValueError, match="not those of the text"):
        asyncio.run(LocalMiniLM().embed_spans(text, spans, pieces=other))
    with pytest.raises(ValueError, match="not those of the text"):
        chunk(text, 200, 100, pieces=other)


def test_the_windows_read_each_piece_once() -> None:
    rng = random.Random(3)
    for _ in range(200):
        count = rng.randrange(1, 3000)
        spans = []
        for _ in range(rng.randrange(1, 12)):
            first = rng.randrange(0, count)
            spans.append((first, min(count, first + rng.randrange(0, 900))))
        pieces = np.array(spans, dtype=np.int64)
        windows = span_windows(pieces)
        held = sorted({n for first, last in spans for n in range(first, last)})
        read = [n for first, last in windows for n in range(first, last)]
        assert read == held
        assert all(0 < last - first <= MAX_TOKENS - 2 for first, last in windows)
    # Spans side by side are each read in the windows they are read in alone.
    spans = [(0, 100), (100, 600), (600, 603), (603, 1400)]
    assert span_windows(np.array(spans, dtype=np.int64)) == [
        (0, 100),
        (100, 350),
        (350, 603),  # 600..603 are too few for a window of their own
        (603, 803),
        (803, 1003),
        (1003, 1203),
        (1203, 1400),
    ]


def test_only_a_local_model_embeds_spans() -> None:
    assert supports_spans(LocalMiniLM())
    assert not supports_spans(UpstreamEmbedder("m", "http://127.0.0.1:9/v1", None))


# The graph's rewrite and its cache, on a small graph of the same make as the bundled one:
# int8 weights cast back to float, and a softmax guarded against NaN.


def _small_graph(path: Path) -> Path:
    rng = np.random.default_rng(5)
    initializers = [numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
    nodes = []
    for name, shape in (("widen", (8, 16)), ("narrow", (16, 8)), ("again", (8, 32))):
        weight = rng.normal(size=shape).astype(np.float32)
        scale = np.abs(weight).max(axis=0) / 127
        initializers.append(
            numpy_helper.from_array(np.round(weight / scale).astype(np.int8), f"{name}_q")
        )
        initializers.append(numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"))
        nodes.append(helper.make_node("Cast", [f"{name}_q"], [f"{name}_f"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [f"{name}_f", f"{name}_scale"], [f"{name}_w"]))
    nodes += [
        helper.make_node("MatMul", ["x", "widen_w"], ["h"], name="widen"),
        helper.make_node("Softmax", ["h"], ["p"], axis=-1),
        helper.make_node("IsNaN", ["p"], ["p_nan"]),
        helper.make_node("Where", ["p_nan", "zero", "p"], ["p_safe"]),
        helper.make_node("MatMul", ["p_safe", "narrow_w"], ["y"], name="narrow"),
        # Not a softmax's guard: stays.
        helper.make_node("IsNaN", ["y"], ["y_nan"]),
        helper.make_node("Where", ["y_nan", "zero", "y"], ["y_safe"]),
        helper.make_node("MatMul", ["y_safe", "again_w"], ["out"], name="again"),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, "n", 32])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _outputs(session: ort.InferenceSession) -> Any:
    x = np.random.default_rng(6).normal(size=(1, 5, 8)).astype(np.float32)
    return session.run(None, {"x": x})[0]


@pytest.fixture
def small_graph(tmp_path: Path) -> Path:
    return _small_graph(tmp_path / "small.onnx")


def test_the_rewrite_is_cached_reused_and_rebuilt_when_corrupt(
    small_graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    original = _outputs(ort.InferenceSession(str(small_graph)))
    session = minilm_graph.open_session(small_graph, "small", ort.SessionOptions())
    np.testing.assert_allclose(_outputs(session), original, atol=0.1 * np.abs(original).max())
    cached = minilm_graph.cache_file(small_graph, "small")
    assert cached is not None
    digest = hashlib.sha256(small_graph.read_bytes()).hexdigest()
    assert cached.parent == tmp_path / "cache" / "threadline"
    assert cached.name.startswith(f"small-{digest}-ort{ort.__version__}-")
    assert [path.name for path in cached.parent.iterdir()] == [cached.name]  # no leftovers
    operators = [node.op_type for node in onnx.load(cached).graph.node]
    assert operators.count("IsNaN") == operators.count("Where") == 1
    # The widening products run in int8; the first narrowing one keeps its float weights.
    assert operators.count("MatMulInteger") == 2
    assert operators.count("MatMul") == 1

    written = cached.stat()
    minilm_graph.open_session(small_graph, "small", ort.SessionOptions())
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (
        written.st_ino,
        written.st_mtime_ns,
    )

    cached.write_bytes(b"half a model")
    session = minilm_graph.open_session(small_graph, "small", ort.SessionOptions())
    np.testing.assert_allclose(_outputs(session), original, atol=0.1 * np.abs(original).max())
    assert onnx.load(cached).graph.node


def test_without_a_writable_cache_the_rewrite_is_made_in_memory(
    small_graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    session = minilm_graph.open_session(small_graph, "small", ort.SessionOptions())
    original = _outputs(ort.InferenceSession(str(small_graph)))
    np.testing.assert_allclose(_outputs(session), original, atol=0.1 * np.abs(original).max())
    assert blocker.read_text() == "a file where the cache folder would be"


def test_where_the_cache_is(small_graph: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = small_graph.parent / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    default = minilm_graph.cache_file(small_graph, "small")
    assert default is not None and default.parent == home / ".cache" / "threadline"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG rule says
    assert minilm_graph.cache_file(small_graph, "small") == default
    other = small_graph.parent / "other.onnx"
    other.write_bytes(small_graph.read_bytes() + b"\0")
    assert minilm_graph.cache_file(other, "small") != default


# An upstream's /embeddings, through the scripted model server.


def _expected(texts: Sequence[str]) -> Vectors:
    rows = np.array([hashed_embedding(text) for text in texts], dtype=np.float64)
    unit: Vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> str:
    return scripted_model.unique_name("embed")


def test_an_upstream_embeds_in_batches_in_order(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    embedder = UpstreamEmbedder(model, scripted_model.base_url, "sk-embed")
    assert (embedder.model, embedder.dimensions) == (model, 0)
    texts = [f"chunk {n} about subject {n % 7}" for n in range(150)]
    vectors = _embed(embedder, texts)
    _assert_unit_rows(vectors, 150, 64)
    np.testing.assert_allclose(vectors, _expected(texts), atol=1e-6)
    assert embedder.dimensions == 64
    sent = scripted_model.requests(model)
    assert [len(body["input"]) for body in sent] == [64, 64, 22]
    assert [text for body in sent for text in body["input"]] == texts
    assert {(body["model"], body["encoding_format"]) for body in sent} == {(model, "float")}
    assert scripted_model.authorizations(model) == ["Bearer sk-embed"] * 3
    assert _embed(embedder, []).shape == (0, 64)


def test_an_azure_deployment_embeds_at_its_own_path(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    embedder = azure_openai_embedder(
        model, scripted_model.root_url, "embed-deployment", "2024-10-21", "azure-key"
    )
    vectors = _embed(embedder, ["one text"])
    np.testing.assert_allclose(vectors, _expected(["one text"]), atol=1e-6)
    [received] = scripted_model.received(model)
    assert received.path == "/openai/deployments/embed-deployment/embeddings"
    assert received.query == {"api-version": "2024-10-21"}
    assert received.headers["api-key"] == "azure-key"
    assert "authorization" not in received.headers


def test_a_transient_failure_is_tried_again(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(
        model,
        Fail(503, "overloaded", headers={"retry-after-ms": "1"}),
        Fail(429, "slow down", headers={"retry-after-ms": "1"}),
    )
    vectors = _embed(UpstreamEmbedder(model, scripted_model.base_url, None), ["a", "b"])
    np.testing.assert_allclose(vectors, _expected(["a", "b"]), atol=1e-6)
    assert len(scripted_model.requests(model)) == 3


def _failure(embedder: UpstreamEmbedder, texts: Sequence[str] = ("a text",)) -> EmbeddingError:
    with pytest.raises(EmbeddingError) as raised:
        _embed(embedder, texts)
    return raised.value


def test_a_refused_request_is_not_tried_again(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, Fail(400, "This model's maximum context length is 8192"))
    error = _failure(UpstreamEmbedder(model, scripted_model.base_url, None))
    assert model in error.message
    assert "HTTP 400" in error.message
    assert "maximum context length is 8192" in error.message
    assert len(scripted_model.requests(model)) == 1


def test_failures_that_outlast_the_retries(scripted_model: ScriptedModelServer, model: str) -> None:
    scripted_model.script(model, *[Fail(500, "boom", headers={"retry-after-ms": "1"})] * 3)
    error = _failure(UpstreamEmbedder(model, scripted_model.base_url, None, max_retries=2))
    assert "HTTP 500" in error.message
    assert len(scripted_model.requests(model)) == 3


def test_an_unreachable_upstream(model: str) -> None:
    error = _failure(UpstreamEmbedder(model, "http://127.0.0.1:9/v1", None, max_retries=0))
    assert "could not be reached" in error.message


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"data": [{"index": 0, "embedding": [1.0, 2.0]}]}', "application/json"),
        (
            '{"data": [{"index": 0, "embedding": [1.0, "x"]}, '
            '{"index": 1, "embedding": [1.0, 2.0]}]}',
            "application/json",
        ),
        (
            '{"data": [{"index": 0, "embedding": [1.0, null]}, '
            '{"index": 1, "embedding": [1.0, 2.0]}]}',
            "application/json",
        ),
        (
            '{"data": [{"index": 0, "embedding": [1.0, 2.0]}, '
            '{"index": 1, "embedding": [1.0, 2.0, 3.0]}]}',
            "application/json",
        ),
        (
            '{"data": [{"index": 0, "embedding": [0.0, 0.0]}, '
            '{"index": 1, "embedding": [1.0, 2.0]}]}',
            "application/json",
        ),
        (
            '{"data": [{"index": 0, "embedding": [1.0, 2.0]}, '
            '{"index": 0, "embedding": [1.0, 2.0]}]}',
            "application/json",
        ),
        ('{"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1}]}', "application/json"),
        ('{"object": "list"}', "application/json"),
        ("[1, 2", "application/json"),
    ],
    ids=[
        "too-few",
        "a-string",
        "a-null",
        "uneven-lengths",
        "a-zero-vector",
        "repeated-index",
        "not-lists",
        "no-data",
        "not-json",
    ],
)
def test_an_answer_without_usable_vectors(
    scripted_model: ScriptedModelServer, model: str, body: str, content_type: str
) -> None:
    scripted_model.script(model, WrongContentType(content_type, body))
    error = _failure(UpstreamEmbedder(model, scripted_model.base_url, None), ["one", "two"])
    assert error.message == f"Embedding with {model!r} failed: " + (
        "The model server's answer held no usable embeddings"
    )
    assert len(scripted_model.requests(model)) == 1


def test_an_error_in_the_answer_is_shown(scripted_model: ScriptedModelServer, model: str) -> None:
    body = '{"error": {"message": "Input is not valid UTF-8"}}'
    scripted_model.script(model, WrongContentType("application/json", body))
    error = _failure(UpstreamEmbedder(model, scripted_model.base_url, None))
    assert error.message.endswith("The model server reported an error: Input is not valid UTF-8")


def test_a_page_instead_of_json_is_tried_again(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, WrongContentType())
    vectors = _embed(UpstreamEmbedder(model, scripted_model.base_url, None), ["a"])
    np.testing.assert_allclose(vectors, _expected(["a"]), atol=1e-6)
    assert len(scripted_model.requests(model)) == 2


def test_vectors_of_another_length_later_are_refused(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    embedder = UpstreamEmbedder(model, scripted_model.base_url, None)
    _embed(embedder, ["first"])
    body = '{"data": [{"index": 0, "embedding": [1.0, 2.0, 3.0]}]}'
    scripted_model.script(model, WrongContentType("application/json", body))
    _failure(embedder, ["second"])
    assert embedder.dimensions == 64


# Choosing the embedder from the settings.


def test_the_bundled_model_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADLINE_EMBEDDING_MODEL", raising=False)
    settings = Settings.from_env()
    assert settings.embedding_model is None
    embedder = embedder_for(settings)
    assert isinstance(embedder, LocalMiniLM)
    assert embedder_for(settings) is embedder
    named = replace(settings, embedding_model=MODEL_ID)
    assert isinstance(embedder_for(named), LocalMiniLM)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_EMBEDDING_MODEL", " text-embedding-3-small ")
    assert Settings.from_env().embedding_model == "text-embedding-3-small"
    monkeypatch.setenv("THREADLINE_EMBEDDING_MODEL", "")
    assert Settings.from_env().embedding_model is None


def test_a_name_the_shorthand_upstream_serves(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    settings = Settings(
        openai_base_url=scripted_model.base_url,
        openai_api_key="sk-shorthand",
        embedding_model=model,
        provider_max_retries=0,
    )
    embedder = embedder_for(settings)
    assert embedder.model == model
    assert embedder_for(settings) is embedder
    vectors = _embed(embedder, ["routed text"])
    np.testing.assert_allclose(vectors, _expected(["routed text"]), atol=1e-6)
    assert scripted_model.authorizations(model) == ["Bearer sk-shorthand"]


def _models_file(folder: Path, base_url: str, root_url: str) -> Path:
    path = folder / "models.toml"
    path.write_text(
        f"""
[[models]]
name = "chat-*"
provider = "local"

[[models]]
name = "azure-embed-*"
provider = "azure_openai"
endpoint = "{root_url}"
deployment = "vectors"
api_version = "2024-10-21"
api_key_env = "EMBED_TEST_AZURE_KEY"

[[models]]
name = "embed-*"
provider = "openai"
base_url = "{base_url}"
api_key_env = "EMBED_TEST_KEY"
""",
        encoding="utf-8",
    )
    return path


def test_names_routed_by_the_models_file(
    scripted_model: ScriptedModelServer,
    model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBED_TEST_KEY", "sk-file")
    monkeypatch.setenv("EMBED_TEST_AZURE_KEY", "azure-file")
    models = _models_file(tmp_path, scripted_model.base_url, scripted_model.root_url)
    settings = Settings(models_file=str(models), embedding_model=model)
    _embed(embedder_for(settings), ["via the file"])
    assert scripted_model.authorizations(model) == ["Bearer sk-file"]

    azure = "azure-" + model
    _embed(embedder_for(replace(settings, embedding_model=azure)), ["via azure"])
    [received] = scripted_model.received(azure)
    assert received.path == "/openai/deployments/vectors/embeddings"
    assert received.headers["api-key"] == "azure-file"


def test_a_name_routed_to_a_local_chat_model_stops_the_start(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    models = _models_file(tmp_path, scripted_model.base_url, scripted_model.root_url)
    settings = Settings(models_file=str(models), embedding_model="chat-small")
    with pytest.raises(SystemExit) as raised:
        embedder_for(settings)
    message = str(raised.value)
    assert "THREADLINE_EMBEDDING_MODEL is 'chat-small'" in message
    assert "entry 1 ('chat-*')" in message
    assert "local llama.cpp model" in message


def test_a_name_no_upstream_serves_stops_the_start(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as raised:
        embedder_for(Settings(embedding_model="text-embedding-3-small"))
    assert "no upstream serves it" in str(raised.value)
    models = _models_file(tmp_path, scripted_model.base_url, scripted_model.root_url)
    with pytest.raises(SystemExit) as raised:
        embedder_for(Settings(models_file=str(models), embedding_model="unrouted"))
    assert "no entry of THREADLINE_MODELS_FILE matches it" in str(raised.value)


def test_a_key_missing_from_the_environment_stops_the_start(
    scripted_model: ScriptedModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMBED_TEST_KEY", raising=False)
    models = _models_file(tmp_path, scripted_model.base_url, scripted_model.root_url)
    with pytest.raises(SystemExit) as raised:
        embedder_for(Settings(models_file=str(models), embedding_model="embed-x"))
    assert "EMBED_TEST_KEY, which is not set" in str(raised.value)
