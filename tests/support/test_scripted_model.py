"""Tests of the scripted model server through the real ``openai`` SDK.

The rest of the suite trusts this server to speak the chat-completions wire format exactly as
the SDK (and threadline's provider client) expects, so it is checked with that same SDK here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageFunctionToolCall

from .scripted_model import (
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


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def client(model: ScriptedModelServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=model.base_url, api_key="test", max_retries=0)


def _user(text: str) -> list[openai.types.chat.ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def _stream(
    client: openai.OpenAI, name: str, text: str = "hi", *, include_usage: bool = False
) -> list[ChatCompletionChunk]:
    stream = client.chat.completions.create(
        model=name,
        messages=_user(text),
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    return list(stream)


def test_scripted_reply(model: ScriptedModelServer, client: openai.OpenAI) -> None:
    name = model.unique_name()
    model.script(name, Reply("Hello there", finish_reason="length"))

    completion = client.chat.completions.create(model=name, messages=_user("x" * 40))

    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello there"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "length"
    assert completion.model == name
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 2)
    assert completion.usage.total_tokens == 13


def test_scripted_usage_overrides_defaults(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Reply("ok", prompt_tokens=100, completion_tokens=7))

    usage = client.chat.completions.create(model=name, messages=_user("hi")).usage

    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 7, 107)


def test_streamed_text_is_split_per_word_by_default(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Reply("one two  three"))

    chunks = _stream(client, name)

    pieces = [chunk.choices[0].delta.content for chunk in chunks[1:-1]]
    assert pieces == ["one", " two", "  three"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1


def test_streamed_text_uses_scripted_chunk_count(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Reply("abcdefg", chunks=3))

    chunks = _stream(client, name)

    assert [chunk.choices[0].delta.content for chunk in chunks[1:-1]] == ["abc", "de", "fg"]


def test_parallel_tool_calls(model: ScriptedModelServer, client: openai.OpenAI) -> None:
    name = model.unique_name()
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", '{"tz": "UTC"}')]
    model.script(name, CallTools(calls), Reply("Sunny, noon."))

    first = client.chat.completions.create(model=name, messages=_user("weather and time?"))

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    tool_calls = choice.message.tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageFunctionToolCall) for call in tool_calls)
    assert [
        (call.function.name, call.function.arguments)
        for call in tool_calls
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    ] == [
        ("get_weather", json.dumps({"city": "Paris"})),
        ("get_time", '{"tz": "UTC"}'),
    ]
    ids = [call.id for call in tool_calls]
    assert all(call_id.startswith("call_") for call_id in ids)
    assert len(set(ids)) == 2

    results: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "tool", "tool_call_id": call_id, "content": "ok"} for call_id in ids
    ]
    second = client.chat.completions.create(model=name, messages=_user("again") + results)
    assert second.choices[0].message.content == "Sunny, noon."
    assert [m["role"] for m in model.requests(name)[1]["messages"]] == ["user", "tool", "tool"]


def test_streamed_parallel_tool_calls(model: ScriptedModelServer, client: openai.OpenAI) -> None:
    name = model.unique_name()
    arguments = {"query": "threadline docs", "limit": 3}
    model.script(name, CallTools([ToolCall("search", arguments), ToolCall("noop", "{}")]))

    chunks = _stream(client, name)

    assembled: dict[int, dict[str, str]] = {}
    for chunk in chunks[:-1]:
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = assembled.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            assert delta.function is not None
            if delta.id is not None:
                assert not entry["id"], "the id is sent once, in the first delta of a call"
                assert delta.type == "function"
                assert delta.function.arguments == ""
                entry["id"], entry["name"] = delta.id, delta.function.name or ""
            entry["arguments"] += delta.function.arguments or ""
    assert [(entry["name"], json.loads(entry["arguments"])) for entry in assembled.values()] == [
        ("search", arguments),
        ("noop", {}),
    ]
    assert all(entry["id"].startswith("call_") for entry in assembled.values())
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    argument_deltas = [
        delta
        for chunk in chunks
        for delta in chunk.choices[0].delta.tool_calls or []
        if delta.id is None
    ]
    assert len(argument_deltas) > 2, "arguments arrive in several pieces"


def test_fail_429_surfaces_as_rate_limit_error(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Fail(429, "slow down", headers={"Retry-After": "0"}))

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=name, messages=_user("hi"))

    assert raised.value.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "0"
    assert raised.value.body == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": None,
    }
    assert len(model.requests(name)) == 1, "max_retries=0 sends exactly one request"


def test_fail_with_custom_error_type_while_streaming(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Fail(503, error_type="overloaded"))

    with pytest.raises(openai.InternalServerError) as raised:
        _stream(client, name)

    assert raised.value.status_code == 503
    assert raised.value.type == "overloaded"


def test_echo_for_unregistered_and_exhausted_models(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Reply("scripted"))
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "text", "text": "last one"}]},
    ]

    answers = [
        client.chat.completions.create(model=name, messages=messages).choices[0].message.content
        for _ in range(2)
    ]
    unregistered = client.chat.completions.create(model=model.unique_name(), messages=_user("yo"))
    streamed = _stream(client, model.unique_name(), "a b")

    assert answers == ["scripted", "echo: last one"]
    assert unregistered.choices[0].message.content == "echo: yo"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed) == "echo: a b"


def test_requests_records_bodies_in_order(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    for text in ("one", "two"):
        client.chat.completions.create(
            model=name,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": text},
            ],
            temperature=0.5,
        )

    bodies = model.requests(name)

    assert [body["messages"][-1]["content"] for body in bodies] == ["one", "two"]
    assert bodies[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert bodies[0]["temperature"] == 0.5
    assert model.requests(model.unique_name()) == []


def test_include_usage_adds_a_final_usage_chunk(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, Reply("a b c"), Reply("a b c"))

    with_usage = _stream(client, name, include_usage=True)
    without_usage = _stream(client, name)

    last = with_usage[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (1, 3)
    assert all(chunk.choices for chunk in with_usage[:-1])
    assert all(chunk.usage is None and chunk.choices for chunk in without_usage)


def test_models_lists_scripted_names(model: ScriptedModelServer, client: openai.OpenAI) -> None:
    name = model.unique_name("listed")
    model.script(name)

    assert name in [entry.id for entry in client.models.list()]


def test_delay_holds_the_first_byte(model: ScriptedModelServer, client: openai.OpenAI) -> None:
    name = model.unique_name()
    model.script(name, Reply("late", delay=0.3))

    started = time.monotonic()
    chunks = _stream(client, name)

    assert time.monotonic() - started >= 0.3
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "late"


def test_concurrent_requests_consume_each_step_once(
    model: ScriptedModelServer, client: openai.OpenAI
) -> None:
    name = model.unique_name()
    model.script(name, *(Reply(f"r{index}") for index in range(20)))

    def ask(_: int) -> str | None:
        completion = client.chat.completions.create(model=name, messages=_user("hi"))
        return completion.choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(20)))

    assert sorted(answers, key=str) == sorted((f"r{index}" for index in range(20)), key=str)


def test_hang_outlasts_a_client_timeout_without_blocking_shutdown() -> None:
    with ScriptedModelServer() as model:
        name = model.unique_name()
        model.script(name, Hang(30))
        impatient = openai.OpenAI(
            base_url=model.base_url, api_key="test", max_retries=0, timeout=0.2
        )
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model=name, messages=_user("hi"))
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3


def test_hang_then_echo(model: ScriptedModelServer, client: openai.OpenAI) -> None:
    name = model.unique_name()
    model.script(name, Hang(0.2))

    started = time.monotonic()
    completion = client.chat.completions.create(model=name, messages=_user("still there?"))

    assert time.monotonic() - started >= 0.2
    assert completion.choices[0].message.content == "echo: still there?"


def _raw_stream(model: ScriptedModelServer, name: str) -> httpx.Response:
    body = {"model": name, "messages": _user("hi"), "stream": True}
    return httpx.post(f"{model.base_url}/chat/completions", json=body, timeout=10)


def _events(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def test_a_wrong_content_type_on_a_200(model: ScriptedModelServer) -> None:
    name = model.unique_name()
    model.script(name, WrongContentType())

    response = _raw_stream(model, name)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


def test_a_whole_completion_for_a_streamed_request(model: ScriptedModelServer) -> None:
    name = model.unique_name()
    model.script(name, Reply("all of it", unstreamed=True, usage=False))

    response = _raw_stream(model, name)

    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion" and "usage" not in body
    assert body["choices"][0]["message"]["content"] == "all of it"


def test_a_stream_cut_short_has_no_finish_reason_and_no_done(model: ScriptedModelServer) -> None:
    name = model.unique_name()
    model.script(name, CutShort("half of"))

    events = _events(_raw_stream(model, name))

    assert "[DONE]" not in events
    chunks = [json.loads(event) for event in events]
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)
    assert "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks) == "half of"


def test_an_error_after_the_200(model: ScriptedModelServer) -> None:
    name = model.unique_name()
    model.script(name, StreamError("it broke", text="so far"))

    response = _raw_stream(model, name)

    assert response.status_code == 200
    *_, last = _events(response)
    assert json.loads(last)["error"]["message"] == "it broke"


def test_tool_calls_as_llama_cpp_python_streams_them(model: ScriptedModelServer) -> None:
    name = model.unique_name()
    model.script(
        name,
        CallTools([ToolCall("get_weather", {"city": "Paris"})], repeat_id_and_name=True),
        CallTools([ToolCall("", {"city": "Paris"}, with_id=False)]),
    )

    repeated = _events(_raw_stream(model, name))
    broken = _events(_raw_stream(model, name))

    def calls(events: list[str]) -> list[dict[str, Any]]:
        chunks = [json.loads(event) for event in events if event != "[DONE]"]
        return [
            call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])
        ]

    assert len(calls(repeated)) > 2
    assert len({call["id"] for call in calls(repeated)}) == 1
    assert {call["function"]["name"] for call in calls(repeated)} == {"get_weather"}
    assert all("id" not in call and "name" not in call["function"] for call in calls(broken))
