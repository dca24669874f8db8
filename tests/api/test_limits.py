"""Limits on what a request carries, each at its edge: the last accepted, the first refused.

Most edges are tested on a server of this module's own with small limits, set through the
same `THREADLINE_MAX_*` variables users set, so an edge costs a few hundred bytes rather
than megabytes; the defaults are checked on the shared server where that stays cheap, and
in `Settings` otherwise. Every refusal is checked for its status, an OpenAI-shaped body
naming the param, and that the database holds exactly what it held before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from support.errors import assert_error_body, sdk_error
from support.live import Databases, configured_server, openai_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess
from support.stored import stored_rows

from threadline.config import Settings

SMALL = {
    "THREADLINE_MAX_MESSAGES_PER_THREAD": "5",
    "THREADLINE_MAX_MESSAGE_CHARS": "100",
    "THREADLINE_MAX_CONTENT_PARTS": "3",
    "THREADLINE_MAX_INSTRUCTIONS_CHARS": "50",
    "THREADLINE_MAX_FUNCTION_BYTES": "200",
    "THREADLINE_MAX_TOOLS": "3",
}


@pytest.fixture(scope="module")
def small(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    """A server whose content limits are small."""
    folder = tmp_path_factory.mktemp("small-limits")
    with configured_server(databases, folder, scripted_model.base_url, SMALL) as process:
        yield process


@pytest.fixture
def small_client(small: ServerProcess) -> openai.OpenAI:
    return openai_client(small)


def _post(server: ServerProcess, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=60)


def _refused(response: httpx.Response, param: str | None, code: str | None = None) -> None:
    error = assert_error_body(response.json(), 400, response.status_code)
    assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error


def _assistant(client: openai.OpenAI, model: str) -> str:
    return client.beta.assistants.create(model=model).id


def _texts(client: openai.OpenAI, thread_id: str) -> list[str]:
    texts: list[str] = []
    for message in client.beta.threads.messages.list(thread_id, order="asc", limit=100):
        for part in message.content:
            assert part.type == "text"
            texts.append(part.text.value)
    return texts


# -- the defaults --------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings()
    limits = settings.limits()

    assert settings.max_body_bytes == 32 * 1024 * 1024
    assert settings.max_header_bytes == 64 * 1024
    assert settings.max_header_count == 100
    assert settings.request_read_timeout_seconds == 30.0
    assert limits.messages_per_thread == 100_000
    assert limits.message_chars == 256 * 1024
    assert limits.content_parts == 64
    assert limits.instructions_chars == 256_000
    assert limits.function_bytes == 64 * 1024
    assert limits.tools == 128


def test_each_limit_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)

    limits = Settings.from_env().limits()

    assert (limits.messages_per_thread, limits.message_chars, limits.content_parts) == (5, 100, 3)
    assert (limits.instructions_chars, limits.function_bytes, limits.tools) == (50, 200, 3)


def test_a_limit_below_one_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_MAX_MESSAGE_CHARS", "0")

    with pytest.raises(SystemExit, match="THREADLINE_MAX_MESSAGE_CHARS must be at least 1"):
        Settings.from_env()


def test_default_message_text_edge(client: openai.OpenAI) -> None:
    """256 KiB of characters (262,144) is the last accepted; one more is refused."""
    thread = client.beta.threads.create()
    accepted = "é" * (256 * 1024)  # characters, not bytes: this is 512 KiB of UTF-8

    client.beta.threads.messages.create(thread.id, role="user", content=accepted)
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread.id, role="user", content=accepted + "x")

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("content", "string_above_max_length")
    assert _texts(client, thread.id) == [accepted]


def test_default_content_parts_edge(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    part: Any = {"type": "text", "text": "p"}

    client.beta.threads.messages.create(thread.id, role="user", content=[part] * 64)
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread.id, role="user", content=[part] * 65)

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("content", "array_above_max_length")
    assert len(_texts(client, thread.id)) == 64


def test_default_run_edges(server: ServerProcess, client: openai.OpenAI, model_name: str) -> None:
    """256,000 characters of instructions, 128 tools, 64 KiB of function definition."""
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    tools: Any = [_function(f"f{i}", 100) for i in range(128)]
    tools[0] = _function("f0", 64 * 1024)

    accepted = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant, instructions="i" * 256_000, tools=tools
    )
    before = stored_rows(server.database_url)
    over: dict[str, dict[str, Any]] = {
        "instructions": {"instructions": "i" * 256_001},
        "tools": {"tools": [*tools, _function("f128", 100)]},
        "tools[0].function": {"tools": [_function("f0", 64 * 1024 + 1)]},
    }
    for param, fields in over.items():
        response = _post(
            server, f"/threads/{thread.id}/runs", {"assistant_id": assistant, **fields}
        )
        _refused(response, param)

    assert accepted.status == "completed" and len(accepted.tools) == 128
    assert stored_rows(server.database_url) == before


def test_default_thread_message_limit_through_create_thread(server: ServerProcess) -> None:
    """100,001 initial messages, the probe that found the leak: refused whole."""
    before = stored_rows(server.database_url)
    message = {"role": "user", "content": "x"}

    response = _post(server, "/threads", {"messages": [message] * 100_001})

    _refused(response, "messages", "array_above_max_length")
    assert stored_rows(server.database_url) == before


# -- one message's text and parts ----------------------------------------------------------------


def test_message_text_edge(small: ServerProcess, small_client: openai.OpenAI) -> None:
    thread = small_client.beta.threads.create()
    before = stored_rows(small.database_url)

    small_client.beta.threads.messages.create(thread.id, role="user", content="a" * 100)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.messages.create(thread.id, role="user", content="b" * 101)

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("content", "string_above_max_length")
    assert _texts(small_client, thread.id) == ["a" * 100]
    assert stored_rows(small.database_url)["messages"] == before["messages"] + 1


def test_message_text_parts_count_together(small_client: openai.OpenAI) -> None:
    thread = small_client.beta.threads.create()

    small_client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[{"type": "text", "text": "a" * 50}, {"type": "text", "text": "b" * 50}],
    )
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.messages.create(
            thread.id,
            role="user",
            content=[{"type": "text", "text": "c" * 50}, {"type": "text", "text": "d" * 51}],
        )

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("content", "string_above_max_length")
    assert _texts(small_client, thread.id) == ["a" * 50, "b" * 50]


def test_content_parts_edge(small_client: openai.OpenAI) -> None:
    thread = small_client.beta.threads.create()
    image: Any = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}

    small_client.beta.threads.messages.create(
        thread.id, role="user", content=[{"type": "text", "text": "three"}, image, image]
    )
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "text", "text": "four"}, image, image, image]
        )

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("content", "array_above_max_length")
    listed = small_client.beta.threads.messages.list(thread.id).data
    assert [len(message.content) for message in listed] == [3]


def test_message_limits_name_the_message_inside_a_thread_and_a_run(
    small: ServerProcess, model_name: str
) -> None:
    client = openai_client(small)
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create()
    long = {"role": "user", "content": "x" * 101}
    before = stored_rows(small.database_url)

    create = _post(small, "/threads", {"messages": [{"role": "user", "content": "ok"}, long]})
    create_and_run = _post(
        small, "/threads/runs", {"assistant_id": assistant, "thread": {"messages": [long]}}
    )
    run = _post(
        small,
        f"/threads/{thread.id}/runs",
        {"assistant_id": assistant, "additional_messages": [long]},
    )

    _refused(create, "messages[1].content", "string_above_max_length")
    _refused(create_and_run, "thread.messages[0].content", "string_above_max_length")
    _refused(run, "additional_messages[0].content", "string_above_max_length")
    assert stored_rows(small.database_url) == before


# -- run instructions and tools ---------------------------------------------------------------


def test_run_instructions_edge(
    small: ServerProcess, small_client: openai.OpenAI, model_name: str
) -> None:
    assistant = _assistant(small_client, model_name)
    thread = small_client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    accepted = small_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant,
        instructions="i" * 50,
        additional_instructions="a" * 50,
    )
    before = stored_rows(small.database_url)
    refused = {}
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant, instructions="x" * 51
        )
    refused["instructions"] = sdk_error(caught.value, 400)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant, additional_instructions="x" * 51
        )
    refused["additional_instructions"] = sdk_error(caught.value, 400)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.create_and_run(assistant_id=assistant, instructions="x" * 51)

    assert accepted.status == "completed"
    assert accepted.instructions == "i" * 50 + "\n\n" + "a" * 50
    for field, error in refused.items():
        assert (error["param"], error["code"]) == (field, "string_above_max_length")
    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("instructions", "string_above_max_length")
    assert stored_rows(small.database_url) == before


def _function(name: str, size: int) -> dict[str, Any]:
    """A function tool whose definition is exactly `size` bytes of compact JSON."""
    function: dict[str, Any] = {
        "name": name,
        "description": "",
        "parameters": {"type": "object", "properties": {}},
    }
    function["description"] = "d" * (size - len(json.dumps(function, separators=(",", ":"))))
    assert len(json.dumps(function, separators=(",", ":"))) == size
    return {"type": "function", "function": function}


def test_run_function_size_edge(
    small: ServerProcess, small_client: openai.OpenAI, model_name: str
) -> None:
    assistant = _assistant(small_client, model_name)
    thread = small_client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    accepted = small_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant,
        tools=[_function("at_limit", 200)],  # type: ignore[list-item]
    )
    before = stored_rows(small.database_url)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant,
            tools=[_function("small", 100), _function("over", 201)],  # type: ignore[list-item]
        )

    assert accepted.status == "completed"
    assert accepted.tools[0].type == "function"
    assert accepted.tools[0].function.name == "at_limit"
    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("tools[1].function", "function_too_large")
    assert stored_rows(small.database_url) == before


def test_run_tools_edge(small: ServerProcess, small_client: openai.OpenAI, model_name: str) -> None:
    assistant = _assistant(small_client, model_name)
    thread = small_client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    tools = [_function(f"f{i}", 80) for i in range(4)]

    accepted = small_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant,
        tools=tools[:3],  # type: ignore[arg-type]
    )
    before = stored_rows(small.database_url)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant,
            tools=tools,  # type: ignore[arg-type]
        )
    create_and_run = _post(small, "/threads/runs", {"assistant_id": assistant, "tools": tools})

    assert len(accepted.tools) == 3
    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("tools", "array_above_max_length")
    _refused(create_and_run, "tools", "array_above_max_length")
    assert stored_rows(small.database_url) == before


def test_assistants_keep_to_the_same_limits_as_runs(small_client: openai.OpenAI) -> None:
    """A run takes its assistant's instructions and tools over: what a run may not carry,
    its assistant may not either."""
    tools = [_function(f"f{i}", 80) for i in range(4)]
    made = small_client.beta.assistants.create(
        model="m",
        instructions="x" * 50,
        tools=tools[:3],  # type: ignore[arg-type]
    )
    listed = [a.id for a in small_client.beta.assistants.list(limit=100)]

    for too_much, param in (
        ({"instructions": "x" * 51}, "instructions"),
        ({"tools": tools}, "tools"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            small_client.beta.assistants.create(model="m", **too_much)  # type: ignore[arg-type]
        assert sdk_error(caught.value, 400)["param"] == param
        with pytest.raises(openai.BadRequestError):
            small_client.beta.assistants.update(made.id, **too_much)  # type: ignore[arg-type]

    assert [a.id for a in small_client.beta.assistants.list(limit=100)] == listed
    kept = small_client.beta.assistants.retrieve(made.id)
    assert kept.instructions == "x" * 50 and len(kept.tools) == 3


# -- tool outputs --------------------------------------------------------------------------------


def test_tool_output_edge(
    small: ServerProcess,
    small_client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """A tool output joins every later prompt, as a message's text does: the same limit.
    (The thread starts empty: its two calls, their outputs and the reply fill it.)"""
    scripted_model.script(
        model_name, CallTools([ToolCall("f", {}), ToolCall("f", {})]), Reply("done")
    )
    assistant = small_client.beta.assistants.create(
        model=model_name,
        tools=[_function("f", 100)],  # type: ignore[list-item]
    )
    thread = small_client.beta.threads.create()
    waiting = small_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    assert waiting.status == "requires_action" and waiting.required_action is not None
    first, second = waiting.required_action.submit_tool_outputs.tool_calls
    before = stored_rows(small.database_url)

    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.runs.submit_tool_outputs(
            run_id=waiting.id,
            thread_id=thread.id,
            tool_outputs=[
                {"tool_call_id": first.id, "output": "a" * 100},
                {"tool_call_id": second.id, "output": "b" * 101},
            ],
        )
    still = small_client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id)
    done = small_client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=waiting.id,
        thread_id=thread.id,
        tool_outputs=[
            {"tool_call_id": first.id, "output": "a" * 100},
            {"tool_call_id": second.id, "output": "b" * 100},
        ],
    )

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("tool_outputs[1].output", "string_above_max_length")
    assert still.status == "requires_action"
    assert stored_rows(small.database_url)["runs"] == before["runs"]
    assert done.status == "completed"


def test_response_function_calls_given_back_edge(
    small: ServerProcess, small_client: openai.OpenAI, model_name: str
) -> None:
    """The calls a client sends back join the prompt as its outputs do: the same limit on
    their arguments."""

    def given(arguments: str) -> list[Any]:
        return [
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": arguments},
            {"type": "function_call_output", "call_id": "c1", "output": "x"},
        ]

    before = stored_rows(small.database_url)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.responses.create(model=model_name, input=given("a" * 101))
    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("input[1].arguments", "string_above_max_length")
    assert stored_rows(small.database_url) == before
    done = small_client.responses.create(model=model_name, input=given("a" * 100))
    assert done.status == "completed"


# -- the thread's message limit on every path that adds messages -------------------------------


def test_thread_created_with_messages_edge(small: ServerProcess) -> None:
    message = {"role": "user", "content": "m"}

    accepted = _post(small, "/threads", {"messages": [message] * 5})
    before = stored_rows(small.database_url)
    refused = _post(small, "/threads", {"messages": [message] * 6})

    assert accepted.status_code == 200, accepted.text
    _refused(refused, "messages", "array_above_max_length")
    assert stored_rows(small.database_url) == before


def test_create_and_run_messages_edge(small: ServerProcess, model_name: str) -> None:
    client = openai_client(small)
    assistant = _assistant(client, model_name)
    message = {"role": "user", "content": "m"}

    accepted = _post(
        small, "/threads/runs", {"assistant_id": assistant, "thread": {"messages": [message] * 5}}
    )
    assert accepted.status_code == 200, accepted.text
    run = accepted.json()
    client.beta.threads.runs.poll(run["id"], thread_id=run["thread_id"])
    before = stored_rows(small.database_url)
    refused = _post(
        small, "/threads/runs", {"assistant_id": assistant, "thread": {"messages": [message] * 6}}
    )

    _refused(refused, "thread.messages", "array_above_max_length")
    assert stored_rows(small.database_url) == before


def test_additional_messages_edge(
    small: ServerProcess, small_client: openai.OpenAI, model_name: str
) -> None:
    assistant = _assistant(small_client, model_name)
    three = [{"role": "user", "content": str(i)} for i in range(3)]
    filled = small_client.beta.threads.create(messages=three)  # type: ignore[arg-type]
    full = small_client.beta.threads.create(messages=three)  # type: ignore[arg-type]

    # Four with the one added: the run's reply is the fifth, the most the thread holds.
    accepted = small_client.beta.threads.runs.create_and_poll(
        thread_id=filled.id,
        assistant_id=assistant,
        additional_messages=three[:1],  # type: ignore[arg-type]
    )
    before = stored_rows(small.database_url)
    with pytest.raises(openai.BadRequestError) as over_thread:
        small_client.beta.threads.runs.create(
            thread_id=full.id,
            assistant_id=assistant,
            additional_messages=three,  # type: ignore[arg-type]
        )
    with pytest.raises(openai.BadRequestError) as over_any_thread:
        small_client.beta.threads.runs.create(
            thread_id=full.id,
            assistant_id=assistant,
            additional_messages=three * 2,  # type: ignore[arg-type]
        )

    assert accepted.status == "completed"
    assert len(_texts(small_client, filled.id)) == 5
    error = sdk_error(over_thread.value, 400)
    assert (error["param"], error["code"]) == (
        "additional_messages",
        "thread_message_limit_exceeded",
    )
    error = sdk_error(over_any_thread.value, 400)
    assert (error["param"], error["code"]) == ("additional_messages", "array_above_max_length")
    assert stored_rows(small.database_url) == before
    assert _texts(small_client, full.id) == ["0", "1", "2"]


def test_message_on_a_full_thread_is_refused(
    small: ServerProcess, small_client: openai.OpenAI
) -> None:
    thread = small_client.beta.threads.create(
        messages=[{"role": "user", "content": str(i)} for i in range(4)]
    )

    small_client.beta.threads.messages.create(thread.id, role="user", content="4")
    before = stored_rows(small.database_url)
    with pytest.raises(openai.BadRequestError) as caught:
        small_client.beta.threads.messages.create(thread.id, role="user", content="5")

    error = sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == ("thread_id", "thread_message_limit_exceeded")
    assert stored_rows(small.database_url) == before
    assert _texts(small_client, thread.id) == ["0", "1", "2", "3", "4"]


# -- a JSON null where an object is due ---------------------------------------------------------


@pytest.mark.parametrize("value", [b"null", b"[]", b'"thread"', b"1"])
def test_create_thread_with_a_body_that_is_not_an_object_is_refused(
    server: ServerProcess, value: bytes
) -> None:
    before = stored_rows(server.database_url)

    response = httpx.post(
        f"{server.base_url}/threads",
        content=value,
        headers={"content-type": "application/json"},
        timeout=30,
    )

    error = assert_error_body(response.json(), 400, response.status_code)
    assert error["message"] == "The request body must be a JSON object."
    assert stored_rows(server.database_url) == before


def test_null_body_is_refused_on_every_route_that_takes_a_body(
    server: ServerProcess, client: openai.OpenAI, model_name: str
) -> None:
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    message = client.beta.threads.messages.list(thread.id).data[0]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant)
    paths = [
        "/assistants",
        f"/assistants/{assistant}",
        "/threads",
        f"/threads/{thread.id}",
        f"/threads/{thread.id}/messages",
        f"/threads/{thread.id}/messages/{message.id}",
        "/threads/runs",
        f"/threads/{thread.id}/runs",
        f"/threads/{thread.id}/runs/{run.id}",
        f"/threads/{thread.id}/runs/{run.id}/submit_tool_outputs",
    ]
    before = stored_rows(server.database_url)

    for path in paths:
        response = httpx.post(
            f"{server.base_url}{path}",
            content=b"null",
            headers={"content-type": "application/json"},
            timeout=30,
        )
        error = assert_error_body(response.json(), 400, response.status_code)
        assert error["message"] == "The request body must be a JSON object.", path

    assert stored_rows(server.database_url) == before
