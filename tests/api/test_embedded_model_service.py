"""The embedded local model answering for real, with no upstream configured."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.live import ServerFactory, openai_client
from support.server import ServerProcess

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def local(start_server: ServerFactory) -> Iterator[ServerProcess]:
    yield start_server(upstream=False)


def test_a_user_with_no_network_gets_a_real_answer(local: ServerProcess) -> None:
    client = openai_client(local)
    assistant = client.beta.assistants.create(
        model="smollm2", instructions="You are a helpful assistant. Answer in one sentence."
    )
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread.id, role="user", content="What is the capital of France?"
    )

    # Greedy, so the answer is the same each time: sampled (an assistant's default temperature
    # is 1), the model once rambled to the 1,024-token cap and the run ended `incomplete`.
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, temperature=0
    )

    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.role == "assistant" and reply.run_id == run.id
    text = reply.content[0].text.value  # type: ignore[union-attr]
    assert len(text.strip()) > 0
    assert run.usage is not None
    assert run.usage.prompt_tokens > 10 and run.usage.completion_tokens > 0


def test_the_function_calling_round_trip_with_the_local_model(local: ServerProcess) -> None:
    client = openai_client(local)
    assistant = client.beta.assistants.create(model="smollm2", tools=[WEATHER])  # type: ignore[list-item]
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}]
    )

    # Greedy, so the call is the same each time: sampled (an assistant's default temperature
    # is 1), the run once completed with no call, the call left unfinished.
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
    )

    assert run.status == "requires_action", run.last_error
    [call] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and arguments["city"]

    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "22 degrees and sunny"}],
        poll_interval_ms=50,
    )

    # The forced choice held for the first call only: then the model answers.
    assert done.status == "completed", done.last_error
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "message_creation"]
    assert steps.data[0].status == "completed"


def test_streaming_from_the_local_model(local: ServerProcess) -> None:
    client = openai_client(local)
    assistant = client.beta.assistants.create(model="smollm2")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}])

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        deltas = [e for e in stream if e.event == "thread.message.delta"]
        final = stream.get_final_messages()

    assert len(deltas) > 1
    streamed = "".join(
        d.data.delta.content[0].text.value or ""  # type: ignore[union-attr, index]
        for d in deltas
    )
    assert streamed == final[0].content[0].text.value  # type: ignore[union-attr]
    assert streamed.strip()


def test_max_completion_tokens_caps_the_local_model(local: ServerProcess) -> None:
    client = openai_client(local)
    assistant = client.beta.assistants.create(model="smollm2")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Write a long story about a dragon."}]
    )

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=16
    )

    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens <= 16
