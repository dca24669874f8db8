"""Connected agents: the model hands a task to another agent, which the service runs as a
sub-run on a thread of its own, through the `openai` client (which passes the Azure tool
definition on as it is) and the scripted model."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import openai
import pytest
from support.errors import sdk_error
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.waiting import wait_for_run, wait_until


def connected(agent_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "connected_agent",
        "connected_agent": {"id": agent_id, "name": name, "description": f"Asks {name}."},
    }


def _raw(client: openai.OpenAI, path: str) -> Any:
    return client.get(path, cast_to=httpx.Response).json()


def _tool_calls(client: openai.OpenAI, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    steps = _raw(client, f"/threads/{thread_id}/runs/{run_id}/steps?order=asc")["data"]
    return [
        call
        for step in steps
        if step["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
    ]


def test_an_agent_answers_through_another_on_a_thread_of_its_own(
    client: openai.OpenAI, scripted_model: ScriptedModelServer
) -> None:
    main_model, stock_model = scripted_model.unique_name(), scripted_model.unique_name()
    scripted_model.script(stock_model, Reply("MSFT is at 350."))
    scripted_model.script(
        main_model,
        CallTools([ToolCall("stock_bot", {"query": "Price of MSFT?"})]),
        Reply("Microsoft trades at 350."),
    )
    stock = client.beta.assistants.create(model=stock_model, instructions="Quote prices.")
    main = client.beta.assistants.create(
        model=main_model,
        tools=[connected(stock.id, "stock_bot")],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "MSFT?"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=main.id)

    assert run.status == "completed", run.last_error
    [call] = _tool_calls(client, thread.id, run.id)
    assert call["type"] == "connected_agent"
    details = call["connected_agent"]
    assert details["name"] == "stock_bot"
    assert details["output"] == "MSFT is at 350."
    assert details["assistant_id"] == stock.id
    sub_run = client.beta.threads.runs.retrieve(details["run_id"], thread_id=details["thread_id"])
    assert sub_run.status == "completed" and sub_run.assistant_id == stock.id
    [question] = client.beta.threads.messages.list(details["thread_id"], order="asc").data[:1]
    assert question.content[0].text.value == "Price of MSFT?"  # type: ignore[union-attr]
    assert scripted_model.requests(stock_model)[0]["messages"][0] == {
        "role": "system",
        "content": "Quote prices.",
    }
    tool_answer = scripted_model.requests(main_model)[1]["messages"][-1]
    assert tool_answer == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "MSFT is at 350.",
    }


def test_a_connected_agent_that_needs_its_client_s_functions_is_stopped_and_says_so(
    client: openai.OpenAI, scripted_model: ScriptedModelServer
) -> None:
    main_model, helper_model = scripted_model.unique_name(), scripted_model.unique_name()
    scripted_model.script(helper_model, CallTools([ToolCall("local_lookup", {})]))
    scripted_model.script(
        main_model, CallTools([ToolCall("helper", {"query": "look it up"})]), Reply("Sorry.")
    )
    function = {"type": "function", "function": {"name": "local_lookup"}}
    helper = client.beta.assistants.create(model=helper_model, tools=[function])  # type: ignore[list-item]
    main = client.beta.assistants.create(
        model=main_model,
        tools=[connected(helper.id, "helper")],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=main.id)

    assert run.status == "completed"
    [call] = _tool_calls(client, thread.id, run.id)
    assert "function tools" in call["connected_agent"]["output"]
    details = call["connected_agent"]
    sub_run = client.beta.threads.runs.retrieve(details["run_id"], thread_id=details["thread_id"])
    assert sub_run.status == "cancelled"


def test_agents_calling_agents_stop_at_three_levels(
    client: openai.OpenAI, scripted_model: ScriptedModelServer
) -> None:
    model = scripted_model.unique_name()
    recurse = CallTools([ToolCall("again", {"query": "deeper"})])
    # Levels 0-3 each call the agent; the call at level 3 is refused without a run.
    scripted_model.script(model, recurse, recurse, recurse, recurse)
    scripted_model.script(model, Reply("3"), Reply("2"), Reply("1"), Reply("0"))
    agent = client.beta.assistants.create(model=model)
    client.beta.assistants.update(agent.id, tools=[connected(agent.id, "again")])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=agent.id)

    assert run.status == "completed"
    assert (
        client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text.value == "0"
    )  # type: ignore[union-attr]
    last = scripted_model.requests(model)[4]["messages"][-1]
    assert last["role"] == "tool" and "stop at 3 levels" in last["content"]


def test_cancelling_the_calling_run_cancels_the_agent_s_run(
    client: openai.OpenAI, scripted_model: ScriptedModelServer
) -> None:
    main_model, slow_model = scripted_model.unique_name(), scripted_model.unique_name()
    release = threading.Event()
    scripted_model.script(slow_model, Reply("late answer", chunks=3, hold=release))
    scripted_model.script(main_model, CallTools([ToolCall("slow", {"query": "take your time"})]))
    slow = client.beta.assistants.create(model=slow_model)
    main = client.beta.assistants.create(
        model=main_model,
        tools=[connected(slow.id, "slow")],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=main.id)
    try:
        calls = wait_until(
            lambda: [
                c
                for c in _tool_calls(client, thread.id, run.id)
                if "run_id" in c["connected_agent"]
            ],
            bool,
            "the agent's run to start",
        )
        details = calls[0]["connected_agent"]
        wait_until(
            lambda: len(scripted_model.requests(slow_model)), lambda n: n == 1, "the agent's model"
        )

        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)

        wait_for_run(client, details["thread_id"], details["run_id"], "cancelled")
        wait_for_run(client, thread.id, run.id, "cancelled")
    finally:
        release.set()


def test_a_connected_agent_that_does_not_exist_is_refused_and_nothing_is_stored(
    client: openai.OpenAI, model_name: str
) -> None:
    before = client.beta.assistants.list(limit=100).data

    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(
            model=model_name,
            tools=[connected("asst_doesnotexist000000000000", "ghost")],  # type: ignore[list-item]
        )

    error = sdk_error(refused.value, 400)
    assert error["param"] == "tools[0].connected_agent.id"
    assert client.beta.assistants.list(limit=100).data == before
