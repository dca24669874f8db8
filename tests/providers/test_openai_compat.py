"""The OpenAI-compatible provider over its real HTTP path, against the scripted model server:
what it sends, how it reads the stream, which failures it retries and what it reports."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from typing import Any

import pytest
from multidict import CIMultiDict
from support.scripted_model import (
    CallTools,
    Fail,
    Hang,
    Reply,
    ScriptedModelServer,
    ToolCall,
)

from threadline.providers.base import ChatChunk, ChatRequest, ProviderError
from threadline.providers.openai_compat import (
    OpenAICompatibleProvider,
    _retry_delay,
    _should_retry,
)


def _request(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=[{"role": "user", "content": "hello"}])


def _collect(
    url: str, request: ChatRequest, *, key: str | None = None, **options: Any
) -> list[ChatChunk]:
    async def collect() -> list[ChatChunk]:
        provider = OpenAICompatibleProvider(url, key, **options)
        try:
            return [chunk async for chunk in provider.stream(request)]
        finally:
            await provider.close()

    return asyncio.run(collect())


def _failure(url: str, request: ChatRequest, **options: Any) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        _collect(url, request, **options)
    return raised.value


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> str:
    return scripted_model.unique_name()


def test_a_streamed_reply_with_its_usage_and_the_key(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, Reply("one two three", prompt_tokens=7, completion_tokens=3))

    chunks = _collect(scripted_model.base_url, _request(model), key="sk-upstream")

    assert "".join(chunk.text for chunk in chunks) == "one two three"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [(c.usage.prompt_tokens, c.usage.completion_tokens) for c in chunks if c.usage] == [
        (7, 3)
    ]
    [sent] = scripted_model.requests(model)
    assert sent["stream"] is True and sent["messages"] == [{"role": "user", "content": "hello"}]
    assert scripted_model.authorizations(model) == ["Bearer sk-upstream"]


def test_tool_call_pieces_keep_their_index(scripted_model: ScriptedModelServer, model: str) -> None:
    scripted_model.script(model, CallTools([ToolCall("lookup", {"city": "Lisbon"})]))

    chunks = _collect(scripted_model.base_url, _request(model))

    pieces = [call for chunk in chunks for call in chunk.tool_calls]
    assert {piece.index for piece in pieces} == {0}
    assert [piece.name for piece in pieces if piece.name] == ["lookup"]
    assert "".join(piece.arguments for piece in pieces) == '{"city": "Lisbon"}'


def test_a_line_far_longer_than_a_socket_read_arrives_whole(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    text = "x" * 300_000
    scripted_model.script(model, Reply(text, chunks=1))

    chunks = _collect(scripted_model.base_url, _request(model))

    assert "".join(chunk.text for chunk in chunks) == text


def test_transient_failures_are_retried_until_one_succeeds(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(
        model, Fail(503), Fail(429, headers={"Retry-After": "0.1"}), Reply("at last")
    )

    chunks = _collect(scripted_model.base_url, _request(model), max_retries=2)

    assert "".join(chunk.text for chunk in chunks) == "at last"
    assert len(scripted_model.requests(model)) == 3


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limit_exceeded"), (500, "server_error")])
def test_retries_run_out_into_the_runs_error_code(
    scripted_model: ScriptedModelServer, model: str, status: int, code: str
) -> None:
    scripted_model.script(model, *[Fail(status, "try later", headers={"retry-after-ms": "10"})] * 2)

    error = _failure(scripted_model.base_url, _request(model), max_retries=1)

    assert error.code == code
    assert error.message == "The model provider answered: try later"
    assert len(scripted_model.requests(model)) == 2


def test_a_refused_request_is_not_retried(scripted_model: ScriptedModelServer, model: str) -> None:
    scripted_model.script(model, Fail(400, "context too long"))

    error = _failure(scripted_model.base_url, _request(model), max_retries=3)

    assert error.code == "invalid_prompt" and "context too long" in error.message
    assert len(scripted_model.requests(model)) == 1


def test_the_upstream_can_forbid_a_retry(scripted_model: ScriptedModelServer, model: str) -> None:
    scripted_model.script(model, Fail(503, "down for good", headers={"x-should-retry": "false"}))

    error = _failure(scripted_model.base_url, _request(model), max_retries=3)

    assert error.code == "server_error"
    assert len(scripted_model.requests(model)) == 1


def test_a_silent_model_times_out_and_is_retried(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, Hang(30), Hang(30))

    error = _failure(scripted_model.base_url, _request(model), max_retries=1, timeout=0.3)

    assert error.code == "server_error" and error.message.startswith("The model provider failed")
    assert len(scripted_model.requests(model)) == 2


def test_an_unreachable_upstream_fails_after_its_retries() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"

    error = _failure(url, _request("any"), max_retries=1)

    assert error.code == "server_error" and error.message.startswith("The model provider failed")


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "250", "Retry-After": "3"}, 0.25),
    ],
)
def test_the_wait_the_upstream_asks_for_is_kept(headers: dict[str, str], wait: float) -> None:
    assert _retry_delay(0, CIMultiDict(headers)) == wait  # case-insensitive, as aiohttp's


def test_a_retry_after_date_is_read_as_utc() -> None:
    in_ten_seconds = email.utils.formatdate(time.time() + 10, usegmt=True)

    assert 8 < _retry_delay(0, CIMultiDict({"Retry-After": in_ten_seconds})) <= 10


@pytest.mark.parametrize("attempt", [0, 1, 2, 6])
def test_without_an_asked_wait_the_backoff_doubles_to_a_cap_less_jitter(attempt: int) -> None:
    full = min(0.5 * 2**attempt, 8.0)

    assert all(0.75 * full <= _retry_delay(attempt, {}) <= full for _ in range(50))


def test_an_upstream_asking_for_more_than_two_minutes_is_not_retried() -> None:
    assert _should_retry(429, CIMultiDict({"Retry-After": "60"}))
    assert not _should_retry(429, CIMultiDict({"Retry-After": "121"}))
    assert _should_retry(400, CIMultiDict({"x-should-retry": "true"}))
