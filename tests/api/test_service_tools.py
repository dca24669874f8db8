"""Tools the service runs itself, in the run's own loop: an OpenAPI tool against a real HTTP
API on loopback, through the `openai` client (which passes the Azure tool definitions on as
they are) and the scripted model, which calls the tools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from support.errors import sdk_error
from support.live import Databases, configured_server, openai_client
from support.pet_api import PetApi, pet_spec
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall

FUNCTION = {"type": "function", "function": {"name": "ask_owner", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def api() -> Iterator[PetApi]:
    with PetApi() as api:
        yield api


def openapi_tool(api: PetApi) -> dict[str, Any]:
    return {
        "type": "openapi",
        "openapi": {
            "name": "pets",
            "description": "The pet shop",
            "spec": pet_spec(api.base_url),
            "auth": {"type": "anonymous"},
            "default_params": [],
        },
    }


def _raw(client: openai.OpenAI, path: str) -> Any:
    return client.get(path, cast_to=httpx.Response).json()


def _steps(client: openai.OpenAI, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    page = _raw(client, f"/threads/{thread_id}/runs/{run_id}/steps?order=asc")
    return list(page["data"])


def _offered(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


def test_a_called_operation_runs_in_the_run_and_the_model_reads_its_answer(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, api: PetApi
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("pets_getPet", {"petId": "7", "verbose": "yes"})]),
        Reply("Pet 7 is here."),
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[openapi_tool(api)],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Find pet 7"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    first, second = scripted_model.requests(model_name)
    assert "pets_getPet" in _offered(first)
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("HTTP 200")
    assert '"id": "7"' in tool_message["content"] or '"id":"7"' in tool_message["content"]
    tool_step, message_step = _steps(client, thread.id, run.id)
    assert tool_step["status"] == "completed"
    [call] = tool_step["step_details"]["tool_calls"]
    assert call["type"] == "openapi" and call["openapi"] == {}
    assert call["function"]["name"] == "pets_getPet"
    assert call["function"]["output"] == tool_message["content"]
    assert message_step["type"] == "message_creation"
    stored = _raw(client, f"/assistants/{assistant.id}")["tools"][0]["openapi"]
    assert "pets_getPet" in [function["name"] for function in stored["functions"]]


def test_operations_called_together_run_together_and_functions_wait_for_the_client(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, api: PetApi
) -> None:
    """The service's calls run first; the run then waits for the function's output alone."""
    scripted_model.script(
        model_name,
        CallTools(
            [
                ToolCall("pets_getPet", {"petId": "1"}),
                ToolCall("ask_owner", {}),
                ToolCall("pets_missing", {}),
            ]
        ),
        Reply("Done."),
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[openapi_tool(api), FUNCTION],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )

    assert waiting.status == "requires_action" and waiting.required_action is not None
    [pending] = waiting.required_action.submit_tool_outputs.tool_calls
    assert pending.function.name == "ask_owner"
    [step] = _steps(client, thread.id, waiting.id)
    outputs = {
        c["function"]["name"]: c["function"].get("output")
        for c in step["step_details"]["tool_calls"]
    }
    assert outputs["pets_getPet"].startswith("HTTP 200")
    assert outputs["pets_missing"].startswith("HTTP 404")
    assert outputs["ask_owner"] is None
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=waiting.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": pending.id, "output": "the owner says hi"}],
    )
    assert done.status == "completed"
    sent = scripted_model.requests(model_name)[-1]["messages"]
    assert [m["content"][:8] for m in sent if m["role"] == "tool"] == [
        "HTTP 200",
        "the owne",
        "HTTP 404",
    ]


def test_a_failing_tool_is_an_answer_the_model_reads_and_the_run_goes_on(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, api: PetApi
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("pets_getPet", '{"petId": ')]),  # arguments cut short
        CallTools([ToolCall("no_such_tool", {})]),
        Reply("Sorry."),
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[openapi_tool(api)],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    last = scripted_model.requests(model_name)[-1]["messages"]
    tool_answers = [m["content"] for m in last if m["role"] == "tool"]
    assert len(tool_answers) == 2
    assert "petId" in tool_answers[0] or "JSON" in tool_answers[0]
    assert tool_answers[1].startswith("No tool named 'no_such_tool' is available.")


def test_a_bad_spec_is_refused_naming_the_field_and_nothing_is_stored(
    client: openai.OpenAI, model_name: str, api: PetApi
) -> None:
    tool = openapi_tool(api)
    tool["openapi"]["spec"] = {"openapi": "3.0.0", "info": {"title": "x"}}
    before = client.beta.assistants.list(limit=100).data

    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(model=model_name, tools=[tool])  # type: ignore[list-item]

    error = sdk_error(refused.value, 400)
    assert error["param"].startswith("tools[0].openapi.spec")
    assert client.beta.assistants.list(limit=100).data == before


@pytest.fixture(scope="module")
def two_round_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[openai.OpenAI]:
    folder: Path = tmp_path_factory.mktemp("rounds")
    settings = {
        "THREADLINE_MAX_TOOL_ROUNDS": "2",
        "THREADLINE_TOOL_TIMEOUT_SECONDS": "0.5",
        "THREADLINE_MAX_TOOL_OUTPUT_CHARS": "100",
    }
    with configured_server(databases, folder, scripted_model.base_url, settings) as process:
        yield openai_client(process)


def test_a_run_that_keeps_calling_tools_ends_incomplete_at_the_round_bound(
    two_round_server: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    api: PetApi,
) -> None:
    client = two_round_server
    call = CallTools([ToolCall("pets_getPet", {"petId": "1"})])
    scripted_model.script(model_name, call, call, call, Reply("never asked"))
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[openapi_tool(api)],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_tool_rounds"
    assert len(scripted_model.requests(model_name)) == 2
    assert [s["status"] for s in _steps(client, thread.id, run.id)] == ["completed", "completed"]


def test_a_streamed_round_reads_back_whole_in_the_openai_stream_helper(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, api: PetApi
) -> None:
    """The SDK adds each step delta's strings to its copy of the call: the outcome's delta
    carries the outcome alone, so the call's id, name and arguments are not doubled."""
    scripted_model.script(
        model_name, CallTools([ToolCall("pets_getPet", {"petId": "7"})]), Reply("ok")
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[openapi_tool(api)],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    done: list[dict[str, Any]] = []

    class Handler(openai.AssistantEventHandler):
        def on_tool_call_done(self, tool_call: Any) -> None:
            done.append(tool_call.model_dump())

    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()
    ) as stream:
        stream.until_done()

    call = done[-1]  # the helper reports a call done again at each later event of its step
    [stored] = _steps(client, thread.id, stream.current_run.id)[0]["step_details"]["tool_calls"]  # type: ignore[union-attr]
    assert call["id"] == stored["id"] and call["type"] == "openapi"
    assert call["function"]["name"] == "pets_getPet"
    assert call["function"]["arguments"] == '{"petId": "7"}'
    assert call["function"]["output"] == stored["function"]["output"]


def test_a_call_past_the_time_limit_and_a_long_answer_are_what_the_model_is_told(
    two_round_server: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    api: PetApi,
) -> None:
    """The loop's own limits, whatever the tool's: the slow operation answers only when its
    caller hangs up, and the big one's answer (already cut at the OpenAPI tool's 1 MiB) is
    longer than the 100 characters allowed here."""
    client = two_round_server
    scripted_model.script(
        model_name,
        CallTools([ToolCall("pets_slow", {}), ToolCall("pets_big", {})]),
        Reply("Done."),
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[openapi_tool(api)],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    slow, big = [m["content"] for m in scripted_model.requests(model_name)[-1]["messages"][-2:]]
    assert slow == "The tool did not answer within 0.5 seconds."
    head, _, note = big.partition("\n[cut: ")
    assert head.startswith("HTTP 200") and len(head) == 100
    assert note.endswith("the first 100 are shown]")
