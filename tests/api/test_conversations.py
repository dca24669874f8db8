"""The Conversations API through the openai SDK's `client.conversations`: a conversation is a
thread, so items written on one side are messages on the other, and ids work both ways."""

from __future__ import annotations

import openai
import pytest
from support.errors import sdk_error
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall


def test_a_conversation_with_items_is_a_thread_with_messages(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        items=[
            {"type": "message", "role": "user", "content": "Hello!"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hi there."}]},
        ],
        metadata={"topic": "greeting"},
    )
    assert conversation.id.startswith("conv_")
    assert conversation.object == "conversation"
    assert conversation.metadata == {"topic": "greeting"}

    items = client.conversations.items.list(conversation.id, order="asc")
    assert [item.type for item in items.data] == ["message", "message"]
    first, second = items.data
    assert first.role == "user" and first.content[0].type == "input_text"  # type: ignore[union-attr]
    assert first.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert second.role == "assistant" and second.content[0].type == "output_text"  # type: ignore[union-attr]

    thread = client.beta.threads.retrieve(conversation.id)
    assert thread.metadata == {"topic": "greeting"}
    messages = client.beta.threads.messages.list(conversation.id, order="asc").data
    assert [m.id for m in messages] == [first.id, second.id]
    assert messages[0].content[0].text.value == "Hello!"  # type: ignore[union-attr]


def test_a_thread_s_messages_are_items_and_items_added_are_messages(
    client: openai.OpenAI,
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "From Assistants"}])
    added = client.conversations.items.create(
        thread.id,
        items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "A"}]},
            {"type": "message", "role": "user", "content": "B"},
        ],
    )
    assert [item.content[0].text for item in added.data] == ["A", "B"]  # type: ignore[union-attr]
    texts = [
        m.content[0].text.value  # type: ignore[union-attr]
        for m in client.beta.threads.messages.list(thread.id, order="asc").data
    ]
    assert texts == ["From Assistants", "A", "B"]
    page = client.conversations.items.list(thread.id, limit=2, order="desc")
    assert [item.content[0].text for item in page.data] == ["B", "A"]  # type: ignore[union-attr]
    assert page.has_more
    rest = client.conversations.items.list(thread.id, limit=2, order="desc", after=page.data[-1].id)
    assert [item.content[0].text for item in rest.data] == ["From Assistants"]  # type: ignore[union-attr]
    one = client.conversations.items.retrieve(added.data[0].id, conversation_id=thread.id)
    assert one.id == added.data[0].id


def test_metadata_update_item_delete_and_conversation_delete(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "x"}])
    updated = client.conversations.update(conversation.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"}
    assert client.conversations.retrieve(conversation.id).metadata == {"k": "v"}
    [item] = client.conversations.items.list(conversation.id).data
    after = client.conversations.items.delete(item.id, conversation_id=conversation.id)
    assert after.id == conversation.id
    assert client.conversations.items.list(conversation.id).data == []
    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(conversation.id)


@pytest.mark.parametrize(
    ("item", "param", "code"),
    [
        ({"type": "reasoning", "summary": []}, "items[1].type", "unsupported_value"),
        ({"type": "function_call_output", "call_id": "c"}, "items[1].output", None),
        ({"type": "function_call", "call_id": "c", "arguments": "{}"}, "items[1].name", None),
        ({"role": "developer", "content": "Be brief."}, "items[1].role", "unsupported_value"),
        ({"role": "robot", "content": "x"}, "items[1].role", None),
        (
            {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]},
            "items[1].content[0].type",
            "unsupported_value",
        ),
        (
            {"role": "user", "content": [{"type": "input_image"}]},
            "items[1].content[0].image_url",
            None,
        ),
        ({"role": "user", "content": []}, "items[1].content", None),
        ({"role": "user", "content": "x", "colour": "red"}, "items[1].colour", None),
    ],
    ids=[
        "reasoning",
        "output-without-output",
        "call-without-name",
        "developer",
        "unknown-role",
        "input-file",
        "image-without-source",
        "empty",
        "unknown-field",
    ],
)
def test_an_item_that_cannot_be_stored_is_refused_and_nothing_is_added(
    client: openai.OpenAI, item: dict[str, object], param: str, code: str | None
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "kept"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.create(
            conversation.id,
            items=[{"role": "user", "content": "first"}, item],  # type: ignore[list-item]
        )
    error = sdk_error(caught.value, 400)
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    items = client.conversations.items.list(conversation.id).data
    assert [i.content[0].text for i in items] == ["kept"]  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError):
        client.conversations.create(items=[item])  # type: ignore[list-item]


def test_function_calls_and_outputs_are_items_in_order_that_assistants_skip(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """What the openai-agents session stores after a turn with a tool: the calls and their
    outputs among the messages. A conversation lists them in order, the Assistants API reads
    its messages alone, and the next response's prompt has them where they were said."""
    conversation = client.conversations.create(
        items=[
            {"role": "user", "content": "Weather in Rome?"},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"role": "assistant", "content": "Sunny in Rome."},
        ]
    )
    listed = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.type for item in listed] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    call, output = listed[1], listed[2]
    assert call.type == "function_call" and call.call_id == "call_1" and call.name == "weather"
    assert output.type == "function_call_output" and output.output == "sunny"
    assert client.conversations.items.retrieve(call.id, conversation_id=conversation.id) == call
    messages = client.beta.threads.messages.list(conversation.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(call.id, thread_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.delete(output.id, thread_id=conversation.id)

    scripted_model.script(model_name, Reply("Still sunny."))
    client.responses.create(model=model_name, conversation=conversation.id, input="And now?")
    [request] = scripted_model.requests(model_name)
    sent = request["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1" and sent[2]["tool_call_id"] == "call_1"

    client.conversations.items.delete(output.id, conversation_id=conversation.id)
    scripted_model.script(model_name, Reply("Unsure."))
    client.responses.create(model=model_name, conversation=conversation.id, input="Again?")
    # A call whose output is gone is not sent: upstreams refuse a call left unanswered.
    roles = [m["role"] for m in scripted_model.requests(model_name)[-1]["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]


def test_an_assistants_run_s_function_calls_are_items_of_its_thread(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """A run that waited for function outputs leaves its calls and the outputs submitted in
    its thread: the conversation lists them where they happened, the Assistants API still
    reads messages alone, and later runs and responses read them before their answer."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("weather", {"city": "Rome"}), ToolCall("weather", {"city": "Oslo"})]),
        Reply("Sunny in Rome, snow in Oslo."),
        Reply("Still so."),
        Reply("As before."),
    )
    weather = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    assistant = client.beta.assistants.create(model=model_name, tools=[weather])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    waiting = client.conversations.items.list(thread.id, order="asc").data
    assert [item.type for item in waiting] == ["message", "function_call", "function_call"]

    client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": c.id, "output": f"out {c.id}"} for c in calls],
    )

    items = client.conversations.items.list(thread.id, order="asc").data
    assert [item.type for item in items] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]
    assert [item.call_id for item in items[1:5]] == [c.id for c in calls] * 2  # type: ignore[union-attr]
    assert items[3].output == f"out {calls[0].id}"  # type: ignore[union-attr]
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    # The run read its own calls once, from its steps.
    resumed = scripted_model.requests(model_name)[1]["messages"]
    assert [m["role"] for m in resumed] == ["user", "assistant", "tool", "tool"]

    client.beta.threads.messages.create(thread.id, role="user", content="And now?")
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    client.responses.create(model=model_name, conversation=thread.id, input="And later?")
    for request in scripted_model.requests(model_name)[2:]:
        sent = request["messages"]
        assert [m["role"] for m in sent][:5] == ["user", "assistant", "tool", "tool", "assistant"]
        assert [c["id"] for c in sent[1]["tool_calls"]] == [c.id for c in calls]
        assert sent[2]["content"] == f"out {calls[0].id}"


def test_a_missing_conversation_or_item_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve("conv_missing")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list("conv_missing")
    conversation = client.conversations.create()
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve("msg_missing", conversation_id=conversation.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.list(conversation.id, include=["message.output_text.logprobs"])
    assert sdk_error(caught.value, 400)["param"] == "include[]"
