"""Function tools: the run stops at `requires_action` until the client submits outputs."""

from __future__ import annotations

import json

import openai
import pytest
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def _thread_with_question(client: openai.OpenAI) -> str:
    return client.beta.threads.create(
        messages=[{"role": "user", "content": "Weather in Paris and Rome?"}]
    ).id


def test_parallel_function_calls_round_trip(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools(
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})]
        ),
        Reply("Sunny in Paris, rainy in Rome."),
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[WEATHER])  # type: ignore[list-item]
    thread_id = _thread_with_question(client)

    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id)

    assert run.status == "requires_action" and run.required_action is not None
    assert run.expires_at is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert all(c.type == "function" and c.function.name == "get_weather" for c in calls)
    [waiting_step] = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert waiting_step.type == "tool_calls" and waiting_step.status == "in_progress"

    outputs = {"Paris": "sunny", "Rome": "rainy"}
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread_id,
        tool_outputs=[
            {"tool_call_id": c.id, "output": outputs[json.loads(c.function.arguments)["city"]]}
            for c in calls
        ],
    )

    assert run.status == "completed" and run.required_action is None
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert reply.content[0].text.value == "Sunny in Paris, rainy in Rome."  # type: ignore[union-attr]
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id, order="asc")
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_step = steps.data[0]
    assert tool_step.status == "completed"
    assert tool_step.step_details.type == "tool_calls"
    recorded = tool_step.step_details.tool_calls
    assert [c.function.output for c in recorded] == ["sunny", "rainy"]  # type: ignore[union-attr]
    second_prompt = scripted_model.requests(model_name)[1]["messages"]
    assert second_prompt[-3]["tool_calls"][0]["id"] == calls[0].id
    assert second_prompt[-2:] == [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "rainy"},
    ]
    assert run.usage is not None
    assert run.usage.total_tokens == sum(s.usage.total_tokens for s in steps if s.usage)


def test_missing_tool_outputs_are_refused_and_the_run_keeps_waiting(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {})]),
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[WEATHER, TIME])  # type: ignore[list-item]
    thread_id = _thread_with_question(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id)
    assert run.required_action is not None
    first, second = run.required_action.submit_tool_outputs.tool_calls

    bad_submissions = [
        [{"tool_call_id": first.id, "output": "sunny"}],
        [{"tool_call_id": first.id, "output": "a"}, {"tool_call_id": "call_other", "output": "b"}],
        [
            {"tool_call_id": first.id, "output": "a"},
            {"tool_call_id": first.id, "output": "a"},
            {"tool_call_id": second.id, "output": "b"},
        ],
    ]
    for outputs in bad_submissions:
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(
                run_id=run.id,
                thread_id=thread_id,
                tool_outputs=outputs,  # type: ignore[arg-type]
            )

    still = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert still.status == "requires_action"
    assert still.required_action == run.required_action
    [step] = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert step.status == "in_progress"


def test_outputs_to_a_run_that_is_not_waiting_are_refused(
    client: openai.OpenAI, model_name: str
) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread_id = _thread_with_question(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id)

    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": "x", "output": "y"}]
        )
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "completed"


@pytest.mark.parametrize(
    ("tool_choice", "sent"),
    [
        ("none", "none"),
        ("auto", "auto"),
        ("required", "required"),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "function", "function": {"name": "get_time"}},
        ),
    ],
)
def test_tool_choice_reaches_the_model(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    tool_choice: object,
    sent: object,
) -> None:
    assistant = client.beta.assistants.create(model=model_name, tools=[WEATHER, TIME])  # type: ignore[list-item]
    thread_id = _thread_with_question(client)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant.id,
        tool_choice=tool_choice,  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )

    assert run.tool_choice is not None and run.parallel_tool_calls is False
    [request] = scripted_model.requests(model_name)
    assert request["tool_choice"] == sent
    assert request["parallel_tool_calls"] is False
    assert [t["function"]["name"] for t in request["tools"]] == ["get_weather", "get_time"]


@pytest.mark.parametrize(
    "forced", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_forced_tool_choice_holds_for_the_first_call_only(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, forced: object
) -> None:
    """Forced again after its outputs came back, a model that obeys would call the tool
    forever and the run would never end."""
    scripted_model.script(
        model_name, CallTools([ToolCall("get_weather", {"city": "Paris"})]), Reply("Sunny.")
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[WEATHER, TIME])  # type: ignore[list-item]
    thread_id = _thread_with_question(client)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant.id,
        tool_choice=forced,  # type: ignore[arg-type]
    )
    assert run.status == "requires_action" and run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls

    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}]
    )

    assert done.status == "completed" and done.tool_choice == run.tool_choice
    first, second = scripted_model.requests(model_name)
    assert first["tool_choice"] == forced and second["tool_choice"] == "auto"


def test_run_tools_replace_the_assistants_tools(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant = client.beta.assistants.create(model=model_name, tools=[WEATHER])  # type: ignore[list-item]
    thread_id = _thread_with_question(client)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant.id,
        tools=[TIME],  # type: ignore[list-item]
    )

    assert [t.function.name for t in run.tools] == ["get_time"]  # type: ignore[union-attr]
    [request] = scripted_model.requests(model_name)
    assert [t["function"]["name"] for t in request["tools"]] == ["get_time"]
