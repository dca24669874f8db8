"""The OpenAI-compatible provider over its real HTTP path, against the scripted model server:
what it sends, how it reads the stream, which failures it retries and what it reports."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import time
from dataclasses import replace
from typing import Any

import pytest
from multidict import CIMultiDict
from support.scripted_model import (
    CallTools,
    CutShort,
    Fail,
    Hang,
    Reply,
    ScriptedModelServer,
    StreamError,
    ToolCall,
    WrongContentType,
)

from threadline.providers.base import ChatChunk, ChatRequest, ProviderError, Usage
from threadline.providers.openai_compat import (
    OpenAICompatibleProvider,
    _AnswerState,
    _retry_delay,
    _should_retry,
    _status_error,
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


@pytest.mark.parametrize(
    ("status", "code", "phrase"),
    [
        (429, "rate_limit_exceeded", "Too Many Requests"),
        (500, "server_error", "Internal Server Error"),
    ],
)
def test_retries_run_out_into_the_runs_error_code(
    scripted_model: ScriptedModelServer, model: str, status: int, code: str, phrase: str
) -> None:
    scripted_model.script(model, *[Fail(status, "try later", headers={"retry-after-ms": "10"})] * 2)

    error = _failure(scripted_model.base_url, _request(model), max_retries=1)

    assert error.code == code
    assert error.message == f"The model server answered HTTP {status} ({phrase}): try later"
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

    assert error.code == "server_error"
    assert error.message == "The model server did not answer in time"
    assert len(scripted_model.requests(model)) == 2


def test_an_unreachable_upstream_fails_after_its_retries() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"

    error = _failure(url, _request("any"), max_retries=1)

    assert error.code == "server_error"
    assert error.message == "The model server could not be reached"


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


def _tool_request(model: str) -> ChatRequest:
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    return ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}], tools=[weather])


def test_an_html_page_on_a_200_is_retried_then_fails_for_the_user(
    scripted_model: ScriptedModelServer, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_model.script(model, WrongContentType(), WrongContentType())

    with caplog.at_level(logging.WARNING, "threadline.providers.openai_compat"):
        error = _failure(scripted_model.base_url, _request(model), max_retries=1)

    assert error.code == "server_error"
    assert error.message == "The model server answered with text/html instead of a stream"
    assert len(scripted_model.requests(model)) == 2
    assert len(caplog.records) == 2
    assert "text/html; charset=utf-8" in caplog.records[-1].getMessage()


def test_an_html_page_then_a_good_answer_is_the_good_answer(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, WrongContentType(), Reply("fine now"))

    chunks = _collect(scripted_model.base_url, _request(model), max_retries=1)

    assert "".join(chunk.text for chunk in chunks) == "fine now"


def test_a_whole_completion_for_a_streamed_request_is_used(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(
        model, Reply("all at once", unstreamed=True, prompt_tokens=5, completion_tokens=3)
    )

    chunks = _collect(scripted_model.base_url, _request(model))

    assert [(c.text, c.finish_reason, c.usage) for c in chunks] == [
        ("all at once", "stop", Usage(5, 3))
    ]


def test_a_whole_completion_with_tool_calls_is_used(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(
        model,
        CallTools(
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {})],
            unstreamed=True,
        ),
    )

    [chunk] = _collect(scripted_model.base_url, _tool_request(model))

    assert chunk.finish_reason == "tool_calls"
    assert [(c.index, c.name, c.arguments) for c in chunk.tool_calls] == [
        (0, "get_weather", '{"city": "Paris"}'),
        (1, "get_time", "{}"),
    ]
    assert all(c.id and c.id.startswith("call_") for c in chunk.tool_calls)


def test_a_stream_cut_off_mid_answer_fails_without_a_retry(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, CutShort("half an ans"), Reply("never asked for"))

    error = _failure(scripted_model.base_url, _request(model), max_retries=2)

    assert (error.code, error.message) == (
        "server_error",
        "The model server ended the answer early",
    )
    assert len(scripted_model.requests(model)) == 1  # the engine already has the half


def test_a_stream_that_ends_before_anything_is_tried_again(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(model, CutShort(""), Reply("second time lucky"))

    chunks = _collect(scripted_model.base_url, _request(model), max_retries=1)

    assert "".join(chunk.text for chunk in chunks) == "second time lucky"


def test_an_error_after_the_200_is_a_provider_error_without_paths(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(
        model,
        StreamError('ValueError: template failed in "/srv/app/llama_cpp/chat.py"', text="Hel"),
    )

    error = _failure(scripted_model.base_url, _request(model), max_retries=2)

    assert error.code == "server_error"
    assert error.message == 'The model server reported an error: template failed in "[path]"'
    assert "/srv/app" in error.detail


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (ToolCall("", {"city": "Paris"}), "without a function name"),
        (ToolCall("get_weather", {"city": "Paris"}, with_id=False), "without an id"),
    ],
)
def test_a_tool_call_without_a_name_or_id_is_a_provider_error(
    scripted_model: ScriptedModelServer, model: str, call: ToolCall, message: str
) -> None:
    scripted_model.script(model, CallTools([call]))

    error = _failure(scripted_model.base_url, _tool_request(model), max_retries=0)

    assert error.code == "server_error"
    assert error.message == f"The model server asked for a tool call {message}"


def test_an_id_and_name_repeated_in_every_delta_are_handed_on_once(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    scripted_model.script(
        model,
        CallTools(
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"zone": "UTC"})],
            repeat_id_and_name=True,
        ),
    )

    chunks = _collect(scripted_model.base_url, _tool_request(model))

    pieces = [call for chunk in chunks for call in chunk.tool_calls]
    assert [(p.index, p.name) for p in pieces if p.name] == [(0, "get_weather"), (1, "get_time")]
    assert len([p for p in pieces if p.id]) == 2
    assert "".join(p.arguments for p in pieces if p.index == 0) == '{"city": "Paris"}'


def test_the_upstreams_error_text_is_summarised_for_the_user(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    upstream = (
        "TypeError: can only concatenate str (not NoneType) to str\n"
        '  File "/usr/lib/python3/site-packages/llama_cpp/server/app.py", line 9'
    )
    scripted_model.script(model, Fail(500, upstream))

    error = _failure(scripted_model.base_url, _request(model), max_retries=0)

    assert error.message == (
        "The model server answered HTTP 500 (Internal Server Error): "
        "can only concatenate str (not NoneType) to str"
    )
    assert "app.py" in error.detail


def test_a_trace_alone_leaves_only_the_status() -> None:
    error = _status_error(502, b'{"error": {"message": "Traceback (most recent call last):"}}')

    assert error.message == "The model server answered HTTP 502 (Bad Gateway)"


def test_unset_sampling_settings_are_not_sent(
    scripted_model: ScriptedModelServer, model: str
) -> None:
    _collect(scripted_model.base_url, _request(model))
    _collect(scripted_model.base_url, replace(_request(model), temperature=0.0, top_p=0.5))

    unset, set_ = scripted_model.requests(model)
    assert "temperature" not in unset and "top_p" not in unset
    assert (set_["temperature"], set_["top_p"]) == (0.0, 0.5)


@pytest.mark.parametrize(
    "text",
    [
        "Hi",
        "The quick brown fox jumps over the lazy dog. " * 20,
        '{"city": "Paris", "temps": [12.5, 13.1, 9.8], "id": "call_abc123XYZ"}' * 5,
        "你好世界。今天天气很好。" * 10,
        "🙂🚀🎉" * 20,
    ],
)
def test_the_token_estimate_errs_high_but_not_wildly(text: str) -> None:
    """Against the bytes of the text: no byte-level BPE token is shorter than a byte, and
    ordinary text takes three to four characters a token."""
    provider = OpenAICompatibleProvider("http://127.0.0.1:9/v1", None)

    estimate = provider.count_tokens("any", text)

    assert estimate >= len(text.encode()) // 4 + 4
    assert estimate <= len(text.encode()) + 4


def _tool_chunk(*calls: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "delta": {"tool_calls": list(calls)}, "finish_reason": finish}]
    }


def test_calls_that_all_say_index_0_but_differ_in_id_stay_apart() -> None:
    """As some servers send parallel calls: an id identifies a call, whatever its index."""
    state = _AnswerState()
    chunks = [
        state.take(_tool_chunk({"index": 0, "id": "call_a", "function": {"name": "f"}})),
        state.take(_tool_chunk({"index": 0, "function": {"arguments": "{}"}})),
        state.take(_tool_chunk({"index": None, "id": "call_b", "function": {"name": "g"}})),
        state.take(_tool_chunk({"index": 0, "function": {"arguments": '{"x": 1}'}})),
        state.take({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ]
    state.end("")

    pieces = [piece for chunk in chunks if chunk for piece in chunk.tool_calls]
    assert [(p.index, p.id, p.name, p.arguments) for p in pieces] == [
        (0, "call_a", "f", ""),
        (0, None, None, "{}"),
        (1, "call_b", "g", ""),
        (1, None, None, '{"x": 1}'),
    ]


def test_a_stream_event_carrying_a_whole_message_is_read_as_its_delta() -> None:
    state = _AnswerState()

    chunk = state.take(
        {"choices": [{"index": 0, "message": {"content": "whole"}, "finish_reason": "stop"}]}
    )

    assert chunk is not None and (chunk.text, chunk.finish_reason) == ("whole", "stop")
