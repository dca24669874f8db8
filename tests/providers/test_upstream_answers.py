"""Broken upstream answers through a live `threadline serve` and the real `openai` SDK: each
ends the run `failed` with a `server_error` a user can read (or, for a whole completion sent
to a streamed request, completes with its text), never an empty or truncated success.

The upstream is the scripted model server, made to misbehave as real ones have. Provider
behaviour does not depend on the store, so one SQLite-backed server serves the module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import openai
import pytest
from openai.types.beta.threads import Run
from support.live import TEST_SERVER_ENV, openai_client
from support.scripted_model import (
    CallTools,
    CutShort,
    Reply,
    ScriptedModelServer,
    StreamError,
    ToolCall,
    WrongContentType,
)
from support.server import ServerProcess
from support.waiting import wait_for_run

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# What must never reach a user: an exception's class, a traceback, a file path.
_INSIDES = re.compile(r"\w+(Error|Exception)\b|Traceback|\.py\b|(^|[\s\"'(])/\w")


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, scripted_model: ScriptedModelServer
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("upstream-answers")
    env = {**TEST_SERVER_ENV, "THREADLINE_OPENAI_BASE_URL": scripted_model.base_url}
    database = f"sqlite:///{folder / 'threadline.db'}"
    with ServerProcess(database, env, folder / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def api(service: ServerProcess) -> openai.OpenAI:
    return openai_client(service)


def _run(api: openai.OpenAI, model: str, *statuses: str, tools: bool = False) -> Run:
    assistant = api.beta.assistants.create(
        model=model,
        instructions="Answer briefly.",
        tools=[WEATHER] if tools else [],  # type: ignore[list-item]
    )
    thread = api.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    run = api.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    return wait_for_run(api, thread.id, run.id, *statuses)


def _failed_for_the_user(run: Run) -> str:
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "server_error"
    message = run.last_error.message
    assert not _INSIDES.search(message), message
    return message


def test_an_html_page_on_a_200_fails_the_run_after_its_retries(
    api: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, *[WrongContentType()] * 3)

    run = _run(api, model_name, "failed")

    message = _failed_for_the_user(run)
    assert message == "The model server answered with text/html instead of a stream"
    assert len(scripted_model.requests(model_name)) == 3  # THREADLINE_PROVIDER_MAX_RETRIES=2


def test_a_whole_completion_for_a_streamed_request_completes_with_its_text(
    api: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("It is sunny in Paris.", unstreamed=True))

    run = _run(api, model_name, "completed")

    [reply] = api.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert reply.content[0].type == "text"
    assert reply.content[0].text.value == "It is sunny in Paris."
    assert run.usage is not None and run.usage.completion_tokens > 0


def test_a_stream_cut_off_mid_answer_fails_the_run(
    api: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, CutShort("It is sunny in"))

    run = _run(api, model_name, "failed")

    assert _failed_for_the_user(run) == "The model server ended the answer early"
    assert len(scripted_model.requests(model_name)) == 1


def test_an_error_after_the_200_fails_the_run_without_the_servers_insides(
    api: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    upstream = 'RuntimeError: decode failed at "/opt/llama/ggml.c":812\nTraceback ...'
    scripted_model.script(model_name, *[StreamError(upstream)] * 3)

    run = _run(api, model_name, "failed")

    assert _failed_for_the_user(run) == (
        'The model server reported an error: decode failed at "[path]":812'
    )


@pytest.mark.parametrize(
    ("call", "missing"),
    [
        (ToolCall("", {"city": "Paris"}), "without a function name"),
        (ToolCall("get_weather", {"city": "Paris"}, with_id=False), "without an id"),
    ],
)
def test_a_tool_call_without_a_name_or_an_id_fails_the_run(
    api: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    call: ToolCall,
    missing: str,
) -> None:
    scripted_model.script(model_name, CallTools([call]))

    run = _run(api, model_name, "failed", tools=True)

    assert _failed_for_the_user(run) == f"The model server asked for a tool call {missing}"


def test_an_id_and_name_repeated_in_every_delta_make_one_call(
    api: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Paris"})], repeat_id_and_name=True),
        Reply("Sunny."),
    )

    run = _run(api, model_name, "requires_action", tools=True)

    assert run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    done = api.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
        poll_interval_ms=20,
    )
    assert done.status == "completed"
    # The call goes back to the model as every common server takes it: content "", not null.
    turn = scripted_model.requests(model_name)[1]["messages"]
    [asked] = [m for m in turn if m["role"] == "assistant"]
    assert asked["content"] == "" and asked["tool_calls"][0]["id"] == call.id
    assert turn[-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_the_server_log_keeps_what_the_user_is_not_shown(
    service: ServerProcess,
    api: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    scripted_model.script(model_name, *[StreamError("disk /var/lib/model.bin unreadable")] * 3)

    run = _run(api, model_name, "failed")

    assert _failed_for_the_user(run) == "The model server reported an error: disk [path] unreadable"
    tries = f"model call for {model_name} failed"
    logged = [line for line in service.log_path.read_text().splitlines() if tries in line]
    assert len(logged) == 3 and all(line.startswith("WARNING") for line in logged)
    assert all("/var/lib/model.bin" in line for line in logged)
