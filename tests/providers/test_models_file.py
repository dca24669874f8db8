"""The models file: what it may say, and the message each mistake in it stops the start with.

Every message names the file, the entry and the field, since the operator fixing it has
only the message to go on; none repeats a key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from threadline.config import Settings
from threadline.providers.base import ChatRequest, ProviderError
from threadline.providers.models_file import (
    AzureDeployment,
    LocalModel,
    OpenAIUpstream,
    api_key,
    load,
    parse,
)
from threadline.providers.registry import build_provider
from threadline.providers.routing import RoutedProvider

SOURCE = Path("/etc/threadline/models.toml")
WHERE = f"THREADLINE_MODELS_FILE {SOURCE}"


def _mistake(text: str) -> str:
    with pytest.raises(SystemExit) as raised:
        parse(text, SOURCE)
    return str(raised.value)


def test_every_provider_in_file_order(tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    text = """
[[models]]
name = "gpt-4o*"
provider = "openai"
base_url = "https://upstream.example/v1/"
api_key_env = "MY_KEY"

[[models]]
name = "local"
provider = "local"

[[models]]
name = "other"
provider = "gguf"
path = "other.gguf"
context_window = 4096

[[models]]
name = "prod-gpt"
provider = "azure_openai"
endpoint = "https://x.openai.azure.com"
deployment = "gpt4o"
api_version = "2024-10-21"
api_key_env = "AZ_KEY"

[[models]]
name = "ollama/*"
provider = "openai"
base_url = "http://127.0.0.1:11434/v1"
"""
    routes = parse(text, tmp_path / "models.toml")

    assert [(r.name, r.kind, r.number) for r in routes] == [
        ("gpt-4o*", "openai", 1),
        ("local", "local", 2),
        ("other", "gguf", 3),
        ("prod-gpt", "azure_openai", 4),
        ("ollama/*", "openai", 5),
    ]
    assert routes[0].provider == OpenAIUpstream("https://upstream.example/v1", "MY_KEY")
    assert routes[1].provider == LocalModel()
    # A relative path is the file's neighbour, not the server's working directory's.
    assert routes[2].provider == LocalModel(gguf, 4096)
    assert routes[3].provider == AzureDeployment(
        "https://x.openai.azure.com", "gpt4o", "2024-10-21", "AZ_KEY"
    )
    assert routes[4].provider == OpenAIUpstream("http://127.0.0.1:11434/v1", None)
    assert routes[0].is_pattern and not routes[1].is_pattern
    assert routes[0].matches("gpt-4o-mini") and not routes[0].matches("GPT-4o")
    assert routes[4].matches("ollama/llama3.2") and not routes[1].matches("locals")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models = [", f"{WHERE} is not valid TOML: "),
        ("", f"{WHERE} has no [[models]] entries"),
        ("models = []", f"{WHERE} has no [[models]] entries"),
        ("models = 'local'", f"{WHERE} has no [[models]] entries"),
        (
            "model = 1\n[[models]]\nname = 'a'\nprovider = 'local'",
            f"{WHERE}: unknown top-level key 'model'",
        ),
        ("models = ['local']", f"{WHERE}: entry 1: is not a table"),
        ("[[models]]\nprovider = 'local'", f"{WHERE}: entry 1: the field 'name' is missing"),
        (
            "[[models]]\nname = 3\nprovider = 'local'",
            f"{WHERE}: entry 1: 'name' must be a non-empty string, got 3",
        ),
        (
            "[[models]]\nname = ' '\nprovider = 'local'",
            f"{WHERE}: entry 1 (' '): 'name' must be a non-empty string, got ' '",
        ),
        (
            "[[models]]\nname = 'a '\nprovider = 'local'",
            f"{WHERE}: entry 1 ('a '): 'name' has spaces around it: 'a '",
        ),
        ("[[models]]\nname = 'a'", f"{WHERE}: entry 1 ('a'): the field 'provider' is missing"),
        (
            "[[models]]\nname = 'a'\nprovider = 'ollama'",
            f"{WHERE}: entry 1 ('a'): provider 'ollama' is not one of 'local', 'gguf', "
            "'openai', 'azure_openai'",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'local'\npath = '/x.gguf'",
            f"{WHERE}: entry 1 ('a'): unknown field 'path' for provider 'local' (its fields: "
            "context_window, name, provider, vision)",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://u/v1'\n"
            "api_key = 'sk-secret'",
            f"{WHERE}: entry 1 ('a'): 'api_key' is not read from the file",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'gguf'",
            f"{WHERE}: entry 1 ('a'): provider 'gguf' needs the field 'path'",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'gguf'\npath = '/nowhere/x.gguf'",
            f"{WHERE}: entry 1 ('a'): 'path' names '/nowhere/x.gguf', which is not a file",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'",
            f"{WHERE}: entry 1 ('a'): provider 'openai' needs the field 'base_url'",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'upstream:8080'",
            f"{WHERE}: entry 1 ('a'): 'base_url' must be an http:// or https:// URL, "
            "got 'upstream:8080'",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://u/v1?x=1'",
            f"{WHERE}: entry 1 ('a'): 'base_url' must not carry a query or a fragment",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://u/v1'\n"
            "api_key_env = ''",
            f"{WHERE}: entry 1 ('a'): 'api_key_env' must be a non-empty string, got ''",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://u/v1'\n"
            "context_window = 0",
            f"{WHERE}: entry 1 ('a'): 'context_window' must be a whole number of tokens "
            "above 0, got 0",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'local'\ncontext_window = true",
            f"{WHERE}: entry 1 ('a'): 'context_window' must be a whole number of tokens "
            "above 0, got True",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://u/v1'\nvision = 'no'",
            f"{WHERE}: entry 1 ('a'): 'vision' must be true or false, got 'no'",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'local'\nvision = true",
            f"{WHERE}: entry 1 ('a'): 'vision' cannot be true for provider 'local': llama.cpp "
            "runs the model here without an image projector",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'azure_openai'\nendpoint = 'https://x'\n"
            "deployment = 'd'\napi_version = '2024-10-21'",
            f"{WHERE}: entry 1 ('a'): provider 'azure_openai' needs the field 'api_key_env'",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'azure_openai'\nendpoint = 'https://x'\n"
            "deployment = 'd'\napi_version = 2024\napi_key_env = 'K'",
            f"{WHERE}: entry 1 ('a'): 'api_version' must be a non-empty string, got 2024",
        ),
        (
            "[[models]]\nname = 'a'\nprovider = 'local'\n"
            "[[models]]\nname = 'b*'\nprovider = 'local'\n"
            "[[models]]\nname = 'a'\nprovider = 'local'",
            f"{WHERE}: entry 3 ('a'): name 'a' is already routed by entry 1",
        ),
    ],
)
def test_each_mistake_is_named(text: str, message: str) -> None:
    assert _mistake(text).startswith(message)


def test_a_key_in_a_url_is_refused_without_repeating_it() -> None:
    message = _mistake(
        "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://me:sk-secret@u/v1'"
    )

    assert message.startswith(f"{WHERE}: entry 1 ('a'): 'base_url' must not carry a user")
    assert "sk-secret" not in message


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "models.toml"

    with pytest.raises(SystemExit, match=f"THREADLINE_MODELS_FILE names {missing}, which cannot"):
        load(missing)


def test_the_key_comes_from_the_variable_the_entry_names() -> None:
    (upstream, local) = parse(
        "[[models]]\nname = 'a'\nprovider = 'openai'\nbase_url = 'https://u/v1'\n"
        "api_key_env = 'A_KEY'\n"
        "[[models]]\nname = 'b'\nprovider = 'local'",
        SOURCE,
    )

    assert api_key(upstream, SOURCE, {"A_KEY": "sk-a"}) == "sk-a"
    assert api_key(local, SOURCE, {}) is None
    for environ in ({}, {"A_KEY": ""}):
        with pytest.raises(SystemExit) as raised:
            api_key(upstream, SOURCE, environ)
        assert str(raised.value) == (
            f"{WHERE}: entry 1 ('a'): api_key_env names A_KEY, which is not set in the environment"
        )


def test_a_missing_key_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        "[[models]]\nname = 'a'\nprovider = 'azure_openai'\nendpoint = 'https://x'\n"
        "deployment = 'd'\napi_version = '2024-10-21'\napi_key_env = 'THREADLINE_TEST_AZ'"
    )
    monkeypatch.delenv("THREADLINE_TEST_AZ", raising=False)

    with pytest.raises(SystemExit, match="api_key_env names THREADLINE_TEST_AZ, which is not"):
        build_provider(Settings(models_file=str(models)))


def test_the_settings_name_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_MODELS_FILE", "/srv/models.toml")

    assert Settings.from_env().models_file == "/srv/models.toml"


def test_the_first_matching_entry_serves_and_the_shorthand_takes_the_rest(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        "[[models]]\nname = 'big-*'\nprovider = 'openai'\nbase_url = 'http://127.0.0.1:9/v1'\n"
        "context_window = 1000\n"
        "[[models]]\nname = 'big-one'\nprovider = 'openai'\nbase_url = 'http://127.0.0.1:9/v1'\n"
        "context_window = 2000\n"
        "[[models]]\nname = 'tiny'\nprovider = 'local'\ncontext_window = 512\n"
        "[[models]]\nname = 'tiny-too'\nprovider = 'local'\ncontext_window = 512\n"
    )
    alone = build_provider(Settings(models_file=str(models)))
    behind = build_provider(
        Settings(models_file=str(models), openai_base_url="http://127.0.0.1:9/v1")
    )
    assert isinstance(alone, RoutedProvider)

    assert alone.context_window("big-one") == 1000  # file order, not the exact name
    assert alone.context_window("tiny") == alone.context_window("tiny-too") == 512
    # Two names for one local model load it once.
    assert alone._find("tiny") is alone._find("tiny-too")
    assert behind.context_window("anything") == Settings().provider_context_window
    with pytest.raises(ProviderError) as raised:
        alone.context_window("anything")
    assert raised.value.code == "invalid_prompt"
    assert "The model 'anything' is not served here" in raised.value.message

    async def refused() -> None:
        request = ChatRequest(model="anything", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(ProviderError, match="'anything' is not served"):
            async for _ in alone.stream(request):
                pass
        await alone.prepare("big-one")
        with pytest.raises(ProviderError, match="'anything' is not served"):
            await alone.prepare("anything")
        await alone.close()
        await behind.close()

    asyncio.run(refused())


def test_whether_a_model_sees_images_is_its_entrys_word_then_its_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_TEST_AZ", "az-key")
    models = tmp_path / "models.toml"
    models.write_text(
        "[[models]]\nname = 'blind-*'\nprovider = 'openai'\nbase_url = 'http://127.0.0.1:9/v1'\n"
        "vision = false\n"
        "[[models]]\nname = 'seeing'\nprovider = 'openai'\nbase_url = 'http://127.0.0.1:9/v1'\n"
        "[[models]]\nname = 'said-so'\nprovider = 'azure_openai'\nendpoint = 'https://x'\n"
        "deployment = 'd'\napi_version = '2024-10-21'\napi_key_env = 'THREADLINE_TEST_AZ'\n"
        "vision = true\n"
        "[[models]]\nname = 'tiny'\nprovider = 'local'\n"
        "[[models]]\nname = 'tiny-too'\nprovider = 'local'\nvision = false\n"
    )
    routes = load(models)
    assert [route.vision for route in routes] == [False, None, True, None, False]
    routed = build_provider(Settings(models_file=str(models)))
    assert isinstance(routed, RoutedProvider)

    # One upstream serves both names, one of them marked as seeing no images.
    assert routed._find("blind-x") is routed._find("seeing")
    assert routed.sees_images("blind-x") is False
    assert routed.sees_images("seeing") is True
    assert routed.sees_images("said-so") is True
    assert routed.sees_images("tiny") is routed.sees_images("tiny-too") is False
    with pytest.raises(ProviderError, match="'anything' is not served"):
        routed.sees_images("anything")
    asyncio.run(routed.close())
