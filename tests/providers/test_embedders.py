"""The embedders file_search uses: the bundled model run for real, an upstream's
`/embeddings` over real HTTP (the scripted model server), and the choice between them that
`THREADLINE_EMBEDDING_MODEL` makes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.scripted_model import Fail, ScriptedModelServer, WrongContentType, hashed_embedding

from threadline.config import Settings
from threadline.providers.embedders.base import Embedder, EmbeddingError, Vectors
from threadline.providers.embedders.local_minilm import LocalMiniLM
from threadline.providers.embedders.minilm_files import DIMENSIONS, MAX_TOKENS, MODEL_ID
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
# float32 model): the int8 one must stay near them.
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
    for first, second, published in _REFERENCE:
        assert float(row[first] @ row[second]) == pytest.approx(published, abs=0.02)


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
    # Alone, a text meets other padding and other batch neighbours: its vector barely moves.
    alone = _embed(embedder, [texts[3]])[0]
    assert float(alone @ first[3]) > 0.995


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
