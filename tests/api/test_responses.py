"""The Responses API through the openai SDK's `client.responses`, with the scripted model: a
response is a run on a thread (a conversation's, the previous response's, or its own), so
what it says can be read back through Conversations and Assistants too."""

from __future__ import annotations

import json
import threading
from typing import Any

import openai
import pytest
from support.errors import sdk_error
from support.scripted_model import CallTools, Fail, Reply, ScriptedModelServer, ToolCall
from support.waiting import wait_until

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _chat(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in request["messages"]]


def test_a_string_input_is_answered_and_instructions_are_the_system_message(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Hello there, friend."))
    response = client.responses.create(
        model=model_name, input="Say hello.", instructions="Be friendly."
    )
    assert response.id.startswith("resp_")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Hello there, friend."
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.status == "completed"
    assert response.instructions == "Be friendly."
    assert response.conversation is None
    assert response.usage is not None and response.usage.total_tokens > 0
    [request] = scripted_model.requests(model_name)
    assert _chat(request) == [("system", "Be friendly."), ("user", "Say hello.")]
    assert client.responses.retrieve(response.id).output_text == "Hello there, friend."


def test_who_the_user_is_and_the_cache_key_are_shown_back(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Hi."))
    response = client.responses.create(
        model=model_name,
        input="Hi.",
        safety_identifier="user-1234",
        prompt_cache_key="greetings",
        user="legacy-user",
    )
    for shown in (response, client.responses.retrieve(response.id)):
        assert shown.safety_identifier == "user-1234"
        assert shown.prompt_cache_key == "greetings"
        assert shown.user == "legacy-user"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model_name, input="Hi.", safety_identifier="x" * 65)
    assert sdk_error(caught.value, 400)["param"] == "safety_identifier"


def test_system_and_developer_input_messages_join_the_instructions(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    client.responses.create(
        model=model_name,
        instructions="Base.",
        input=[
            {"role": "system", "content": "System says."},
            {"role": "developer", "content": [{"type": "input_text", "text": "Dev says."}]},
            {"role": "user", "content": "Hi"},
        ],
    )
    [request] = scripted_model.requests(model_name)
    assert _chat(request) == [("system", "Base.\n\nSystem says.\n\nDev says."), ("user", "Hi")]


def test_a_conversation_gets_the_input_and_the_output(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Paris."))
    conversation = client.conversations.create(
        items=[{"role": "user", "content": "We talk about France."}]
    )
    response = client.responses.create(
        model=model_name, input="Its capital?", conversation=conversation.id
    )
    assert response.conversation is not None and response.conversation.id == conversation.id
    items = client.conversations.items.list(conversation.id, order="asc").data
    texts = [item.content[0].text for item in items]  # type: ignore[union-attr,index]
    assert texts == ["We talk about France.", "Its capital?", "Paris."]
    assert items[-1].id == response.output[0].id
    messages = client.beta.threads.messages.list(conversation.id, order="asc").data
    assert [m.content[0].text.value for m in messages] == texts  # type: ignore[union-attr]
    [request] = scripted_model.requests(model_name)
    assert _chat(request) == [("user", "We talk about France."), ("user", "Its capital?")]
    # Continuing it by its id goes on in the conversation, which keeps what is said.
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name, input="x", previous_response_id=response.id, store=False
        )
    assert sdk_error(caught.value, 400)["param"] == "store"
    then = client.responses.create(
        model=model_name, input="More?", previous_response_id=response.id
    )
    assert then.conversation is not None and then.conversation.id == conversation.id
    assert len(client.conversations.items.list(conversation.id).data) == 5


def test_deleting_a_response_leaves_its_conversation_as_it_is(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Kept."))
    conversation = client.conversations.create()
    response = client.responses.create(model=model_name, input="Hi", conversation=conversation.id)
    [run] = client.beta.threads.runs.list(conversation.id).data
    assert run.id == response.id and run.status == "completed"
    client.responses.delete(response.id)
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [i.content[0].text for i in items] == ["Hi", "Kept."]  # type: ignore[union-attr,index]
    assert client.beta.threads.runs.list(conversation.id).data == []


def test_an_assistants_thread_goes_on_through_responses(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("First answer."), Reply("Second answer."))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "One"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed"
    response = client.responses.create(
        model=model_name, input="Two", conversation={"id": thread.id}
    )
    assert response.output_text == "Second answer."
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    texts = [m.content[0].text.value for m in messages]  # type: ignore[union-attr]
    assert texts == ["One", "First answer.", "Two", "Second answer."]
    assert _chat(scripted_model.requests(model_name)[1]) == [
        ("user", "One"),
        ("assistant", "First answer."),
        ("user", "Two"),
    ]


def test_previous_response_id_chains_the_context(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Nice to meet you, Ada."), Reply("You are Ada."))
    first = client.responses.create(model=model_name, input="I am Ada.")
    second = client.responses.create(
        model=model_name, input="Who am I?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert second.output_text == "You are Ada."
    assert _chat(scripted_model.requests(model_name)[1]) == [
        ("user", "I am Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "Who am I?"),
    ]


def test_a_branch_from_an_earlier_response_reads_the_history_up_to_it(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """Continuing from a response that was continued already: the branch reads what led to
    that response and its answer, not what was said after it; both lines go on."""
    scripted_model.script(
        model_name,
        Reply("Nice to meet you, Ada."),
        Reply("You are Ada."),
        Reply("Ada, as you said."),
        Reply("Still Ada."),
        Reply("Yes, Ada."),
    )
    first = client.responses.create(model=model_name, input="I am Ada.")
    second = client.responses.create(
        model=model_name, input="Who am I?", previous_response_id=first.id
    )
    branch = client.responses.create(
        model=model_name, input="What was my name?", previous_response_id=first.id
    )
    assert branch.previous_response_id == first.id
    assert branch.output_text == "Ada, as you said."
    assert _chat(scripted_model.requests(model_name)[2]) == [
        ("user", "I am Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What was my name?"),
    ]
    items = client.responses.input_items.list(branch.id).data
    assert [i.content[0].text for i in items] == ["What was my name?"]  # type: ignore[union-attr,index]
    client.responses.create(model=model_name, input="And now?", previous_response_id=branch.id)
    client.responses.create(model=model_name, input="Sure?", previous_response_id=second.id)
    on_branch, on_second = scripted_model.requests(model_name)[3:]
    assert ("user", "Who am I?") not in _chat(on_branch)
    assert ("user", "What was my name?") not in _chat(on_second)
    assert _chat(on_second)[:4] == [
        ("user", "I am Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "Who am I?"),
        ("assistant", "You are Ada."),
    ]


def test_a_branch_answers_the_calls_the_earlier_response_ended_with_again(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply("Sunny."),
        Reply("Rainy."),
    )
    first = client.responses.create(
        model=model_name,
        input="Weather?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    [call] = first.output
    assert call.type == "function_call"
    for output in ("sun", "rain"):
        client.responses.create(
            model=model_name,
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": output}],
        )
    told = [
        [m["content"] for m in request["messages"] if m["role"] == "tool"]
        for request in scripted_model.requests(model_name)[1:]
    ]
    assert told == [["sun"], ["rain"]]


def test_a_conversation_s_earlier_response_is_not_branched(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    conversation = client.conversations.create()
    first = client.responses.create(model=model_name, input="One.", conversation=conversation.id)
    client.responses.create(model=model_name, input="Two.", conversation=conversation.id)
    newest = _newest_thread(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model_name, input="x", previous_response_id=first.id)
    assert sdk_error(caught.value, 400)["param"] == "previous_response_id"
    assert _newest_thread(client) == newest
    assert len(client.conversations.items.list(conversation.id).data) == 4


def test_a_function_call_round_trip(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply("It is sunny in Oslo."),
    )
    first = client.responses.create(
        model=model_name,
        input="Weather in Oslo?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert call.id is not None and call.id.startswith("fc_")
    assert first.tools[0].name == "get_weather"  # type: ignore[union-attr]

    second = client.responses.create(
        model=model_name,
        previous_response_id=first.id,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text == "It is sunny in Oslo."
    assert [item.type for item in second.output] == ["message"]
    request = scripted_model.requests(model_name)[1]
    [asked] = [m for m in request["messages"] if m.get("tool_calls")]
    assert asked["tool_calls"][0]["id"] == call.call_id
    [told] = [m for m in request["messages"] if m["role"] == "tool"]
    assert told == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert _chat(request)[0] == ("user", "Weather in Oslo?")


def test_outputs_must_answer_the_calls_the_last_response_ended_with(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "A"}), ToolCall("get_weather", {"city": "B"})]),
    )
    first = client.responses.create(
        model=model_name,
        input="Weather?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    calls = [item.call_id for item in first.output]  # type: ignore[union-attr]
    assert len(calls) == 2
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"type": "function_call_output", "call_id": "nope", "output": "x"}], "input[0].call_id"),
        ([{"type": "function_call_output", "call_id": calls[0], "output": "x"}], "input"),
    ]
    for given, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(
                model=model_name,
                previous_response_id=first.id,
                input=given,  # type: ignore[arg-type]
            )
        assert sdk_error(caught.value, 400)["param"] == param
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name,
            input=[{"type": "function_call_output", "call_id": calls[0], "output": "x"}],
        )
    assert sdk_error(caught.value, 400)["param"] == "input[0].call_id"
    # Nothing was kept of the refused ones: the first is still the thread's latest.
    ok = client.responses.create(
        model=model_name,
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": calls[1], "output": "rain"},
            {"type": "function_call_output", "call_id": calls[0], "output": "sun"},
        ],
    )
    assert ok.status == "completed"


def _call(call_id: str, city: str) -> dict[str, Any]:
    arguments = json.dumps({"city": city})
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": "get_weather",
        "arguments": arguments,
    }


def _output(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def test_a_client_that_keeps_the_history_sends_the_calls_back(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """No previous response: the calls come back as `function_call` items, calls made one
    after the other one round, read by the model in order; they are input, not output."""
    scripted_model.script(model_name, Reply("Sunny, then rain."))
    response = client.responses.create(
        model=model_name,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[  # type: ignore[arg-type]
            {"role": "user", "content": "Weather in Oslo, then in Bergen and Tromsø?"},
            _call("call_1", "Oslo"),
            _output("call_1", "sunny"),
            {**_call("call_2", "Bergen"), "id": "fc_call_2", "status": "completed"},
            _call("call_3", "Tromsø"),
            _output("call_3", "snow"),
            _output("call_2", "rain"),
        ],
    )
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text == "Sunny, then rain."
    [request] = scripted_model.requests(model_name)
    rounds = [
        [call["id"] for call in m["tool_calls"]] for m in request["messages"] if m.get("tool_calls")
    ]
    assert rounds == [["call_1"], ["call_2", "call_3"]]
    told = [(m["tool_call_id"], m["content"]) for m in request["messages"] if m["role"] == "tool"]
    assert told == [("call_1", "sunny"), ("call_2", "rain"), ("call_3", "snow")]
    assert _chat(request)[0] == ("user", "Weather in Oslo, then in Bergen and Tromsø?")
    # The answer can be continued: the calls it was given are not waiting for outputs.
    then = client.responses.create(
        model=model_name, input="Thanks.", previous_response_id=response.id
    )
    assert then.status == "completed"


def test_a_history_with_messages_after_its_calls_is_read_in_order(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The openai-agents way of carrying a conversation by hand: the last result's items
    (`to_input_list()`) and the next question. The input's items are its input items, and
    the thread keeps them in order."""
    scripted_model.script(model_name, Reply("Rain in Bergen."))
    given: list[Any] = [
        {"role": "user", "content": "Weather in Oslo?"},
        _call("call_1", "Oslo"),
        _output("call_1", "sunny"),
        {"role": "assistant", "content": "Sunny in Oslo."},
        {"role": "user", "content": "And Bergen?"},
    ]
    response = client.responses.create(model=model_name, input=given)
    [request] = scripted_model.requests(model_name)
    assert [m["role"] for m in request["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    items = client.responses.input_items.list(response.id, order="asc").data
    assert [item.type for item in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    forgotten = client.responses.create(model=model_name, input=given, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(forgotten.id)


@pytest.mark.parametrize(
    ("given", "param"),
    [
        ([_output("call_1", "x"), _call("call_1", "A")], "input[1].call_id"),
        ([_call("call_1", "A")], "input"),
        ([_call("call_1", "A"), _call("call_1", "B"), _output("call_1", "x")], "input[2].call_id"),
        ([{**_call("call_1", "A"), "name": ""}, _output("call_1", "x")], "input[1].name"),
        ([{**_call("call_1", "A"), "extra": 1}, _output("call_1", "x")], "input[1].extra"),
    ],
    ids=[
        "output-before-its-call",
        "unanswered",
        "call-twice",
        "no-name",
        "unknown-field",
    ],
)
def test_calls_given_back_must_each_be_answered_after_them(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    given: list[Any],
    param: str,
) -> None:
    newest = _newest_thread(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name,
            input=[{"role": "user", "content": "Weather?"}, *given],
        )
    assert sdk_error(caught.value, 400)["param"] == param
    assert scripted_model.requests(model_name) == []
    assert _newest_thread(client) == newest


def test_streaming_text_and_the_final_response(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("One two three four", chunks=4))
    deltas: list[str] = []
    kinds: list[str] = []
    with client.responses.stream(model=model_name, input="Count.") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "One two three four"
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.index("response.output_item.added") < kinds.index("response.output_text.delta")
    assert final.output_text == "One two three four"
    stored = client.responses.retrieve(final.id)
    assert _unparsed(final.to_dict()) == stored.to_dict()


def test_streaming_a_function_call(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("get_weather", {"city": "Rome"})]))
    with client.responses.stream(
        model=model_name,
        input="Weather?",
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Rome"}
    assert client.responses.retrieve(final.id).output[0].id == call.id


def test_a_failed_and_a_cut_short_response(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        Fail(400, "prompt refused"),
        Reply("cut off mid", finish_reason="length"),
        Reply("cut again", finish_reason="length"),
    )
    failed = client.responses.create(model=model_name, input="x")
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "invalid_prompt"
    cut = client.responses.create(model=model_name, input="y", max_output_tokens=16)
    assert cut.status == "incomplete" and cut.max_output_tokens == 16
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output_text == "cut off mid"
    with client.responses.stream(model=model_name, input="z") as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete"
    assert client.responses.retrieve(cut.id).output[0].status == "incomplete"  # type: ignore[union-attr]


def test_background_then_retrieve_until_completed(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Done in the background."))
    response = client.responses.create(model=model_name, input="Work.", background=True)
    assert response.status == "queued" and response.background
    wait_until(
        lambda: client.responses.retrieve(response.id).status,
        lambda status: status == "completed",
        "the background response completes",
    )
    assert client.responses.retrieve(response.id).output_text == "Done in the background."


def test_cancel_a_background_response(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    hold = threading.Event()
    scripted_model.script(model_name, Reply("partial and more", chunks=2, hold=hold))
    try:
        response = client.responses.create(model=model_name, input="Go.", background=True)
        wait_until(
            lambda: client.responses.retrieve(response.id).output,
            bool,
            "the response's reply begins",
        )
        cancelled = client.responses.cancel(response.id)
        assert cancelled.status == "cancelled"
    finally:
        hold.set()
    assert client.responses.retrieve(response.id).status == "cancelled"
    foreground = client.responses.create(model=model_name, input="Now.")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(foreground.id)
    sdk_error(caught.value, 400)


def test_a_background_stream_resumed_from_the_middle(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The client leaves a live background stream after the first words; a new request
    picks it up after the last event it saw, follows it to the end, and nothing is missed
    or sent twice."""
    hold = threading.Event()
    scripted_model.script(model_name, Reply("one two three four", chunks=4, hold=hold))
    try:
        first = client.responses.create(
            model=model_name, input="Count.", background=True, stream=True
        )
        seen = []
        for event in first:
            seen.append(event)
            if event.type == "response.output_text.delta":
                break
        first.close()
        response_id = seen[0].response.id  # type: ignore[union-attr]
        assert seen[0].type == "response.created" and seen[0].response.background  # type: ignore[union-attr]
        resumed = client.responses.retrieve(
            response_id, stream=True, starting_after=seen[-1].sequence_number
        )
        hold.set()
        rest = list(resumed)
    finally:
        hold.set()
    events = seen + rest
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three four"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "one two three four"  # type: ignore[union-attr]


def test_a_stored_stream_replayed_whole_or_after_any_event(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Replay me later", chunks=3))
    original = [
        event.to_dict()
        for event in client.responses.create(model=model_name, input="Say it.", stream=True)
    ]
    response_id = original[0]["response"]["id"]
    replayed = [e.to_dict() for e in client.responses.retrieve(response_id, stream=True)]
    assert replayed == original
    middle = original[len(original) // 2]["sequence_number"]
    after = client.responses.retrieve(response_id, stream=True, starting_after=middle)
    assert [e.to_dict() for e in after] == replayed[middle + 1 :]
    with client.responses.stream(response_id=response_id) as again:
        assert again.get_final_response().output_text == "Replay me later"
    # Past the end: an empty stream that ends, not one that waits.
    end = original[-1]["sequence_number"]
    assert list(client.responses.retrieve(response_id, stream=True, starting_after=end)) == []
    beyond = client.responses.retrieve(response_id, stream=True, starting_after=end + 50)
    assert list(beyond) == []


def test_resuming_needs_a_stream_and_a_response_that_is_kept(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    response = client.responses.create(model=model_name, input="Hi.")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.retrieve(response.id, starting_after=2)
    assert sdk_error(caught.value, 400)["param"] == "starting_after"
    forgotten = client.responses.create(model=model_name, input="Hi.", store=False)
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve(forgotten.id, stream=True, starting_after=0))
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve("resp_unknown", stream=True))
    # A stream shows what the response's own request included; asking for more is refused.
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.retrieve(response.id, stream=True, include=["file_search_call.results"])
    assert sdk_error(caught.value, 400)["param"] == "include[]"


def test_reasoning_effort_goes_to_the_model_and_is_shown_back(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Thought hard."))
    response = client.responses.create(
        model=model_name, input="Think.", reasoning={"effort": "high"}
    )
    assert response.reasoning is not None and response.reasoning.effort == "high"
    [request] = scripted_model.requests(model_name)
    assert request["reasoning_effort"] == "high"
    plain = client.responses.create(model=model_name, input="Don't.")
    assert plain.reasoning is None
    assert "reasoning_effort" not in scripted_model.requests(model_name)[-1]


def test_input_tokens_are_counted_and_nothing_is_kept(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    short = client.responses.input_tokens.count(model=model_name, input="Hi.")
    assert short.object == "response.input_tokens" and short.input_tokens > 0
    longer = client.responses.input_tokens.count(
        model=model_name, input="Hi. " * 50, instructions="Be brief."
    )
    assert longer.input_tokens > short.input_tokens
    newest = _newest_thread(client)
    conversation = client.conversations.create(items=[{"role": "user", "content": "kept"}])
    in_conversation = client.responses.input_tokens.count(
        model=model_name, input="Hi.", conversation=conversation.id
    )
    assert in_conversation.input_tokens > short.input_tokens
    items = client.conversations.items.list(conversation.id).data
    assert [i.content[0].text for i in items] == ["kept"]  # type: ignore[union-attr,index]
    first = client.responses.create(model=model_name, input="One.")
    continued = client.responses.input_tokens.count(previous_response_id=first.id, input="Two.")
    assert continued.input_tokens > short.input_tokens  # the model is the previous one's
    assert _newest_thread(client) != newest  # the conversation and `first` made threads
    latest = _newest_thread(client)
    client.responses.input_tokens.count(model=model_name, input="No thread of its own.")
    assert _newest_thread(client) == latest
    assert len(scripted_model.requests(model_name)) == 1  # only `first` called the model
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_tokens.count(input="Which model?")
    assert sdk_error(caught.value, 400)["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.responses.input_tokens.count(model=model_name, conversation="conv_missing")


def test_delete_and_input_items(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    response = client.responses.create(
        model=model_name,
        input=[
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "input_text", "text": "second"}]},
        ],
    )
    items = client.responses.input_items.list(response.id, order="asc")
    assert [item.content[0].text for item in items.data] == ["first", "second"]  # type: ignore[union-attr,index]
    page = client.responses.input_items.list(response.id, limit=1)
    assert [item.content[0].text for item in page.data] == ["second"]  # type: ignore[union-attr,index]
    assert page.has_more
    raw = client.with_options(max_retries=0).delete(f"/responses/{response.id}", cast_to=object)
    assert raw == {"id": response.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=model_name, input="x", previous_response_id=response.id)


def test_store_false_keeps_nothing(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Forgotten."))
    response = client.responses.create(model=model_name, input="Secret.", store=False)
    assert response.output_text == "Forgotten."
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=model_name, input="x", previous_response_id=response.id)
    with client.responses.stream(model=model_name, input="Streamed.", store=False) as stream:
        final = stream.get_final_response()
    wait_until(lambda: _gone(client, final.id), bool, "the streamed response is forgotten")


def _unparsed(value: Any) -> Any:
    """A parsed response's fields as the plain response has them (no `parsed`)."""
    if isinstance(value, dict):
        return {k: _unparsed(v) for k, v in value.items() if k != "parsed"}
    if isinstance(value, list):
        return [_unparsed(v) for v in value]
    return value


def _gone(client: openai.OpenAI, response_id: str) -> bool:
    try:
        client.responses.retrieve(response_id)
    except openai.NotFoundError:
        return True
    return False


@pytest.mark.parametrize(
    ("fields", "status", "param", "code"),
    [
        ({"tools": [{"type": "web_search"}]}, 400, "tools[0].type", "unsupported_value"),
        (
            {"input": [{"type": "reasoning", "summary": []}]},
            400,
            "input[0].type",
            "unsupported_value",
        ),
        ({"conversation": "conv_missing"}, 404, None, None),
        ({"previous_response_id": "resp_missing"}, 404, None, None),
        (
            {"conversation": "CONV", "previous_response_id": "resp_x"},
            400,
            "previous_response_id",
            None,
        ),
        ({"conversation": "CONV", "store": False}, 400, "store", None),
        ({"text": {"format": {"type": "yaml"}}}, 400, "text.format.type", None),
        ({"tool_choice": {"type": "web_search_preview"}}, 400, "tool_choice", "unsupported_value"),
        ({"temperature": 3}, 400, "temperature", None),
        ({"reasoning": {"summary": "auto"}}, 400, "reasoning.summary", "unsupported_value"),
        ({"reasoning": {"effort": "extreme"}}, 400, "reasoning.effort", None),
        ({"max_tool_calls": 0}, 400, "max_tool_calls", None),
        ({"frobnicate": True}, 400, "frobnicate", None),
    ],
    ids=[
        "tool-type",
        "item-type",
        "missing-conversation",
        "missing-previous",
        "both",
        "store-false-in-conversation",
        "text-format",
        "tool-choice",
        "temperature",
        "reasoning-summary",
        "reasoning-effort",
        "max-tool-calls",
        "unknown-field",
    ],
)
def test_a_refused_request_is_named_and_keeps_nothing(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    fields: dict[str, Any],
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "kept"}])
    fields = {k: conversation.id if v == "CONV" else v for k, v in fields.items()}
    body = {"model": model_name, "input": "hello", **fields}
    newest = _newest_thread(client)
    with pytest.raises(openai.APIStatusError) as caught:
        client.post("/responses", body=body, cast_to=object)
    error = sdk_error(caught.value, status)
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    items = client.conversations.items.list(conversation.id).data
    assert [i.content[0].text for i in items] == ["kept"]  # type: ignore[union-attr,index]
    assert scripted_model.requests(model_name) == []
    assert _newest_thread(client) == newest  # no thread of its own was made either


def _newest_thread(client: openai.OpenAI) -> Any:
    page: Any = client.get("/threads", cast_to=object, options={"params": {"limit": 1}})
    return page["data"][0]["id"]
