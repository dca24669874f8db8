"""What a client writes while a run is under way stays: the worker finishing the run writes
only the fields it changes, never the copy of the run, message or thread it read earlier.

The interleaving is made, not hoped for: the model holds its answer after one piece until
the test has written, so the worker claimed the run (and read it) before the client's
writes and finishes it after them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import openai
import pytest
from openai.types.beta import Thread
from openai.types.beta.threads import Message, Run
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.waiting import wait_for_run, wait_until


@pytest.fixture
def hold() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # a failing test must not leave the model server's handler waiting


def _run_held_mid_answer(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    hold: threading.Event,
) -> tuple[Thread, Run, Message]:
    """A run whose model has sent the first piece of its answer and waits for `hold`."""
    scripted_model.script(model_name, Reply("one two three", hold=hold))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "count"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    return thread, run, _run_message(client, thread.id, run.id)


def _run_message(client: openai.OpenAI, thread_id: str, run_id: str) -> Message:
    """The run's message, once the worker has written its first piece."""
    return wait_until(
        lambda: client.beta.threads.messages.list(thread_id, run_id=run_id).data,
        bool,
        "the run's message",
    )[0]


def test_metadata_set_while_the_model_answers_survives_the_run(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    hold: threading.Event,
) -> None:
    thread, run, message = _run_held_mid_answer(client, scripted_model, model_name, hold)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"

    tagged_run = client.beta.threads.runs.update(
        run.id, thread_id=thread.id, metadata={"ticket": "42"}
    )
    tagged_message = client.beta.threads.messages.update(
        message.id, thread_id=thread.id, metadata={"reviewed": "no"}
    )
    tagged_thread = client.beta.threads.update(thread.id, metadata={"topic": "counting"})
    hold.set()
    done = wait_for_run(client, thread.id, run.id, "completed")

    assert tagged_run.metadata == {"ticket": "42"} and tagged_run.status == "in_progress"
    assert tagged_message.metadata == {"reviewed": "no"}
    assert tagged_thread.metadata == {"topic": "counting"}
    assert done.metadata == {"ticket": "42"}
    assert done.usage is not None and done.completed_at is not None
    final = client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert final.metadata == {"reviewed": "no"} and final.status == "completed"
    assert final.content[0].text.value == "one two three"  # type: ignore[union-attr]
    assert client.beta.threads.retrieve(thread.id).metadata == {"topic": "counting"}


def test_metadata_set_while_a_run_waits_for_tool_outputs_survives_its_end(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("lookup", {"q": "x"})]),
        Reply("found it"),
    )
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assistant = client.beta.assistants.create(model=model_name, tools=[tool])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "look"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.required_action is not None
    client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"phase": "tools"})

    call = run.required_action.submit_tool_outputs.tool_calls[0]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}]
    )

    assert done.status == "completed" and done.metadata == {"phase": "tools"}


def test_metadata_set_on_a_finished_run_leaves_it_finished(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The run's status, timestamps and usage are the worker's; a metadata update writes the
    metadata alone (before, it wrote back the whole run it had read)."""
    scripted_model.script(model_name, Reply("done"))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"k": "v"})

    assert updated.status == "completed" and updated.metadata == {"k": "v"}
    assert updated.model_dump(exclude={"metadata"}) == run.model_dump(exclude={"metadata"})


def test_a_run_s_message_cannot_be_deleted_while_the_run_writes_it(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    hold: threading.Event,
) -> None:
    thread, run, message = _run_held_mid_answer(client, scripted_model, model_name, hold)

    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.messages.delete(message.id, thread_id=thread.id)
    hold.set()
    done = wait_for_run(client, thread.id, run.id, "completed")
    gone = client.beta.threads.messages.delete(message.id, thread_id=thread.id)

    assert refused.value.body["param"] == "message_id"  # type: ignore[index]
    assert done.status == "completed" and gone.deleted
    assert [m.role for m in client.beta.threads.messages.list(thread.id)] == ["user"]
