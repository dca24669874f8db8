"""Runs through the openai SDK: the reply, the prompt the model saw, steps and usage."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.beta.threads import Run
from openai.types.beta.threads.runs import RunStep
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall


def _assistant(client: openai.OpenAI, model: str, **fields: object) -> str:
    return client.beta.assistants.create(model=model, **fields).id  # type: ignore[arg-type]


def test_create_and_poll_reads_the_reply(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Paris is the capital of France."))
    assistant_id = _assistant(client, model_name, instructions="Answer briefly.")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="Capital of France?")

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)

    assert run.status == "completed"
    assert run.started_at is not None and run.completed_at is not None
    assert run.expires_at is None and run.failed_at is None and run.last_error is None
    assert run.usage is not None and run.usage.total_tokens > 0
    reply = client.beta.threads.messages.list(thread.id, order="desc", limit=1).data[0]
    assert reply.role == "assistant"
    assert reply.content[0].type == "text"
    assert reply.content[0].text.value == "Paris is the capital of France."
    assert reply.assistant_id == assistant_id and reply.run_id == run.id
    sent = scripted_model.requests(model_name)[0]["messages"]
    assert sent == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
    ]


def test_run_instructions_replace_and_additional_instructions_append(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant_id = _assistant(client, model_name, instructions="Assistant rules.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    replaced = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, instructions="Run rules."
    )
    appended = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, additional_instructions="Be polite."
    )

    assert replaced.instructions == "Run rules."
    assert appended.instructions == "Assistant rules.\n\nBe polite."
    first, second = scripted_model.requests(model_name)
    assert first["messages"][0] == {"role": "system", "content": "Run rules."}
    assert second["messages"][0] == {"role": "system", "content": "Assistant rules.\n\nBe polite."}


def test_additional_messages_join_the_thread_before_the_run(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant_id = _assistant(client, model_name)
    thread = client.beta.threads.create()

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        additional_messages=[{"role": "user", "content": "added with the run"}],
    )

    assert run.status == "completed"
    texts = [
        m.content[0].text.value  # type: ignore[union-attr]
        for m in client.beta.threads.messages.list(thread.id, order="asc")
    ]
    assert texts == ["added with the run", "echo: added with the run"]


def test_run_overrides_model_and_sampling(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant_id = _assistant(client, "not-this-one", temperature=0.2)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, model=model_name, top_p=0.5
    )

    assert run.model == model_name and run.temperature == 0.2 and run.top_p == 0.5
    [sent] = scripted_model.requests(model_name)
    assert sent["temperature"] == 0.2 and sent["top_p"] == 0.5


def test_sampling_left_unset_is_not_sent_to_the_model(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The model server's own defaults apply: a stored 1.0 would override them."""
    assistant_id = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)

    assert run.temperature is None and run.top_p is None
    [sent] = scripted_model.requests(model_name)
    assert "temperature" not in sent and "top_p" not in sent
    assert client.beta.assistants.retrieve(assistant_id).temperature is None


def test_create_thread_and_run_poll(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant_id = _assistant(client, model_name)

    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant_id,
        thread={"messages": [{"role": "user", "content": "new thread"}], "metadata": {"k": "v"}},
        metadata={"run": "1"},
    )

    assert run.status == "completed" and run.metadata == {"run": "1"}
    assert client.beta.threads.retrieve(run.thread_id).metadata == {"k": "v"}
    reply = client.beta.threads.messages.list(run.thread_id).data[0]
    assert reply.content[0].text.value == "echo: new thread"  # type: ignore[union-attr]


def test_steps_record_the_message_and_usage(client: openai.OpenAI, model_name: str) -> None:
    assistant_id = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)

    [step] = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
    again = client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id)

    assert step == again
    assert step.type == "message_creation" and step.status == "completed"
    assert step.step_details.type == "message_creation"
    message_id = step.step_details.message_creation.message_id
    assert client.beta.threads.messages.retrieve(message_id, thread_id=thread.id).run_id == run.id
    assert step.usage is not None and run.usage is not None
    assert step.usage.total_tokens == run.usage.total_tokens


def test_runs_list_retrieve_and_modify(client: openai.OpenAI, model_name: str) -> None:
    assistant_id = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    ids = [
        client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id).id
        for _ in range(3)
    ]

    listed = client.beta.threads.runs.list(thread.id, order="asc", limit=2)
    rest = client.beta.threads.runs.list(thread.id, order="asc", after=listed.data[-1].id)
    updated = client.beta.threads.runs.update(ids[0], thread_id=thread.id, metadata={"a": "b"})

    assert [r.id for r in listed.data] == ids[:2] and listed.has_more
    assert [r.id for r in rest.data] == ids[2:] and not rest.has_more
    assert updated.metadata == {"a": "b"}
    assert client.beta.threads.runs.retrieve(ids[0], thread_id=thread.id).metadata == {"a": "b"}


def test_a_thread_takes_one_active_run_at_a_time(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("slow", delay=30))
    assistant_id = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    first = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)

    with pytest.raises(openai.BadRequestError) as second:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant_id,
            additional_messages=[{"role": "user", "content": "lost?"}],
        )
    with pytest.raises(openai.BadRequestError) as message:
        client.beta.threads.messages.create(thread.id, role="user", content="more")

    assert "already has an active run" in second.value.message
    assert "while a run" in message.value.message
    assert [r.id for r in client.beta.threads.runs.list(thread.id)] == [first.id]
    assert len(client.beta.threads.messages.list(thread.id).data) == 1
    client.beta.threads.runs.cancel(first.id, thread_id=thread.id)
    done = client.beta.threads.runs.poll(first.id, thread_id=thread.id)
    assert done.status == "cancelled"


def test_unknown_assistant_is_refused_and_nothing_is_stored(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    with pytest.raises(openai.BadRequestError) as error:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id="asst_missing",
            additional_messages=[{"role": "user", "content": "lost?"}],
        )

    assert error.value.body["param"] == "assistant_id"  # type: ignore[index]
    assert client.beta.threads.runs.list(thread.id).data == []
    assert client.beta.threads.messages.list(thread.id).data == []


def test_run_on_unknown_thread_is_404(client: openai.OpenAI, model_name: str) -> None:
    assistant_id = _assistant(client, model_name)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id="thread_missing", assistant_id=assistant_id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve("run_missing", thread_id="thread_missing")


def test_bad_run_options_are_refused(client: openai.OpenAI, model_name: str) -> None:
    assistant_id = _assistant(client, model_name)
    thread = client.beta.threads.create()
    bad_options: list[dict[str, object]] = [
        {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"tool_choice": "required"},
        {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"temperature": "hot"},
    ]
    for options in bad_options:
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.create(
                thread_id=thread.id,
                assistant_id=assistant_id,
                **options,  # type: ignore[arg-type]
            )
    assert client.beta.threads.runs.list(thread.id).data == []


def _raw(client: openai.OpenAI, path: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(path, cast_to=httpx.Response).json()
    return body


def test_runs_and_steps_have_their_openai_fields_and_no_others(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """Rendered from the stored records: a run waiting for outputs, its tool-call step and
    the finished run hold the openai SDK's fields (and `reasoning_effort`, which its
    `runs.create` takes), in its shapes."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("lookup", '{"q": "x"}')]),
        Reply("done"),
    )
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assistant_id = _assistant(client, model_name, tools=[tool])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        response_format={"type": "json_schema", "json_schema": {"name": "out"}},
    )
    path = f"/threads/{thread.id}/runs/{waiting.id}"
    pending = _raw(client, path)
    assert waiting.required_action is not None
    [call] = waiting.required_action.submit_tool_outputs.tool_calls
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=waiting.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
    )
    steps = client.get(f"{path}/steps", cast_to=httpx.Response).json()["data"]

    run_keys = set(Run.model_fields) | {"reasoning_effort"}
    assert set(pending) == run_keys and set(_raw(client, path)) == run_keys
    assert pending["tools"] == [tool]
    assert pending["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert pending["response_format"] == {"type": "json_schema", "json_schema": {"name": "out"}}
    assert pending["required_action"] == {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                }
            ]
        },
    }
    assert done.status == "completed"
    assert [set(step) for step in steps] == [set(RunStep.model_fields)] * 2
    tool_step = next(step for step in steps if step["type"] == "tool_calls")
    assert tool_step["step_details"] == {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "x"}', "output": "42"},
            }
        ],
    }
