"""The openai-agents SDK with this service as its model provider: its `Runner` drives an
`Agent` through `/v1/responses` (an `OpenAIResponsesModel` on an `AsyncOpenAI` client of the
live server), runs the agent's function tools itself and sends their outputs back, and keeps
a conversation's history in an `OpenAIConversationsSession`; the scripted model answers
behind the service. What the SDK sent is checked where the service keeps it (responses,
conversation items, the Assistants view of the same thread) and where the model read it
(the scripted model's requests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai
import pytest
from agents import (
    Agent,
    FunctionTool,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from pydantic import BaseModel
from support.live import openai_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess

T = TypeVar("T")


class Forecast(BaseModel):
    city: str
    sky: str


ANSWER = "It is sunny in Oslo."


@pytest.fixture(autouse=True, scope="module")
def _no_tracing() -> None:
    """The SDK would send its traces to the hosted service otherwise."""
    set_tracing_disabled(True)


def _weather(seen: list[str]) -> FunctionTool:
    """A tool the SDK runs in this process; `seen` gets the city of each call."""

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    return get_weather


def _run(server: ServerProcess, use: Callable[[openai.AsyncOpenAI], Awaitable[T]]) -> T:
    """`use` with an async client of the server, on an event loop of its own."""

    async def main() -> T:
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="test-key", max_retries=0
        ) as client:
            return await use(client)

    return asyncio.run(main())


def _agent(client: openai.AsyncOpenAI, model_name: str, *tools: FunctionTool) -> Agent[Any]:
    return Agent(
        name="forecaster",
        instructions="Answer briefly.",
        tools=list(tools),
        model=OpenAIResponsesModel(model=model_name, openai_client=client),
    )


def _chat(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in request["messages"]]


def _assert_read_the_tool_round(request: dict[str, Any]) -> None:
    """The model's second request carries its call and the tool's output, after the
    question."""
    asked = [m for m in request["messages"] if m.get("tool_calls")]
    [call] = asked[0]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    [told] = [m for m in request["messages"] if m["role"] == "tool"]
    assert told == {"role": "tool", "tool_call_id": call["id"], "content": "sunny in Oslo"}
    assert _chat(request)[:2] == [("system", "Answer briefly."), ("user", "Weather in Oslo?")]


def test_the_runner_runs_a_function_tool_and_gives_the_model_s_answer(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("get_weather", {"city": "Oslo"})]), Reply(ANSWER)
    )
    seen: list[str] = []

    async def use(client: openai.AsyncOpenAI) -> Any:
        return await Runner.run(_agent(client, model_name, _weather(seen)), "Weather in Oslo?")

    result = _run(server, use)
    assert result.final_output == ANSWER
    assert seen == ["Oslo"]
    first, second = scripted_model.requests(model_name)
    assert _chat(first) == [("system", "Answer briefly."), ("user", "Weather in Oslo?")]
    _assert_read_the_tool_round(second)
    # Both model calls are responses the service keeps.
    sync = openai_client(server)
    [asked, answered] = [sync.responses.retrieve(r.response_id) for r in result.raw_responses]
    assert [item.type for item in asked.output] == ["function_call"]
    assert answered.output_text == ANSWER and answered.id == result.last_response_id


def test_a_streamed_run_gives_the_same_answer(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("get_weather", {"city": "Oslo"})]), Reply(ANSWER)
    )
    seen: list[str] = []

    async def use(client: openai.AsyncOpenAI) -> tuple[Any, list[str], list[str]]:
        streamed = Runner.run_streamed(
            _agent(client, model_name, _weather(seen)), "Weather in Oslo?"
        )
        kinds: list[str] = []
        deltas: list[str] = []
        async for event in streamed.stream_events():
            if event.type == "raw_response_event":
                kinds.append(event.data.type)
                if event.data.type == "response.output_text.delta":
                    deltas.append(event.data.delta)
            elif event.type == "run_item_stream_event":
                kinds.append(event.name)
        return streamed, kinds, deltas

    streamed, kinds, deltas = _run(server, use)
    assert streamed.final_output == ANSWER
    assert "".join(deltas) == ANSWER
    assert seen == ["Oslo"]
    assert kinds.count("response.completed") == 2
    assert (
        kinds.index("tool_called")
        < kinds.index("tool_output")
        < kinds.index("message_output_created")
    )
    _assert_read_the_tool_round(scripted_model.requests(model_name)[1])


def test_a_conversations_session_keeps_the_history_across_turns(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Nice to meet you, Ada."), Reply("You are Ada."))

    async def use(client: openai.AsyncOpenAI) -> tuple[str, list[Any], Any, list[Any]]:
        session = OpenAIConversationsSession(openai_client=client)
        agent = _agent(client, model_name)
        first = await Runner.run(agent, "I am Ada.", session=session)
        second = await Runner.run(agent, "Who am I?", session=session)
        assert (first.final_output, second.final_output) == (
            "Nice to meet you, Ada.",
            "You are Ada.",
        )
        kept = await session.get_items()
        popped = await session.pop_item()
        left = await session.get_items()
        return session.session_id, kept, popped, left

    conversation_id, kept, popped, left = _run(server, use)
    said = [("user", "I am Ada."), ("assistant", "Nice to meet you, Ada."), ("user", "Who am I?")]
    assert _chat(scripted_model.requests(model_name)[1])[1:] == said
    texts = [_text(item) for item in kept]
    assert texts == ["I am Ada.", "Nice to meet you, Ada.", "Who am I?", "You are Ada."]
    assert _text(popped) == "You are Ada." and [_text(i) for i in left] == texts[:3]
    sync = openai_client(server)
    items = sync.conversations.items.list(conversation_id, order="asc").data
    assert [(i.role, i.content[0].text) for i in items] == said  # type: ignore[union-attr,index]
    messages = sync.beta.threads.messages.list(conversation_id, order="asc").data
    assert [(m.role, m.content[0].text.value) for m in messages] == said  # type: ignore[union-attr]

    async def clear(client: openai.AsyncOpenAI) -> None:
        await OpenAIConversationsSession(
            conversation_id=conversation_id, openai_client=client
        ).clear_session()

    _run(server, clear)
    with pytest.raises(openai.NotFoundError):
        sync.conversations.retrieve(conversation_id)


def _text(item: Any) -> str:
    content = item["content"]
    return content if isinstance(content, str) else str(content[0]["text"])


def test_a_session_whose_agent_calls_a_tool_keeps_the_round_in_the_conversation(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The session saves the tool round (`function_call` and `function_call_output` items)
    among the messages; the next turn's model reads the round where it happened, and the
    Assistants view of the same thread shows the messages alone."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply(ANSWER),
        Reply("Still sunny."),
    )
    seen: list[str] = []

    async def use(client: openai.AsyncOpenAI) -> str:
        session = OpenAIConversationsSession(openai_client=client)
        agent = _agent(client, model_name, _weather(seen))
        first = await Runner.run(agent, "Weather in Oslo?", session=session)
        second = await Runner.run(agent, "And now?", session=session)
        assert (first.final_output, second.final_output) == (ANSWER, "Still sunny.")
        return session.session_id

    conversation_id = _run(server, use)
    assert seen == ["Oslo"]
    sync = openai_client(server)
    items = sync.conversations.items.list(conversation_id, order="asc").data
    assert [item.type for item in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    third = scripted_model.requests(model_name)[2]
    assert [m["role"] for m in third["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    _assert_read_the_tool_round(third)
    messages = sync.beta.threads.messages.list(conversation_id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]


def test_the_runner_goes_on_in_a_conversation_by_its_id(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """`conversation_id=`: each request names the conversation and sends only what is new
    (the tool's output, then the next question); the conversation gets both turns."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply(ANSWER),
        Reply("Still sunny."),
    )
    seen: list[str] = []
    sync = openai_client(server)
    conversation = sync.conversations.create()

    async def use(client: openai.AsyncOpenAI) -> tuple[Any, Any]:
        agent = _agent(client, model_name, _weather(seen))
        first = await Runner.run(agent, "Weather in Oslo?", conversation_id=conversation.id)
        streamed = Runner.run_streamed(agent, "And now?", conversation_id=conversation.id)
        async for _ in streamed.stream_events():
            pass
        return first, streamed

    first, second = _run(server, use)
    assert (first.final_output, second.final_output) == (ANSWER, "Still sunny.")
    assert seen == ["Oslo"]
    asked = scripted_model.requests(model_name)
    _assert_read_the_tool_round(asked[1])
    _assert_read_the_tool_round(asked[2])  # the round stays in the conversation
    assert _chat(asked[2])[-2:] == [("assistant", ANSWER), ("user", "And now?")]
    items = sync.conversations.items.list(conversation.id, order="asc").data
    assert [i.type for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    texts = [i.content[0].text for i in items if i.type == "message"]  # type: ignore[union-attr,index]
    assert texts == ["Weather in Oslo?", ANSWER, "And now?", "Still sunny."]
    responses = [sync.responses.retrieve(r.response_id) for r in first.raw_responses]
    assert all(r.conversation and r.conversation.id == conversation.id for r in responses)


def test_the_runner_chains_responses_by_previous_response_id(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """`auto_previous_response_id=True` chains the tool round; `previous_response_id=`
    goes on from the run's last response."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply(ANSWER),
        Reply("Still sunny."),
    )
    seen: list[str] = []

    async def use(client: openai.AsyncOpenAI) -> tuple[Any, Any]:
        agent = _agent(client, model_name, _weather(seen))
        first = await Runner.run(agent, "Weather in Oslo?", auto_previous_response_id=True)
        second = await Runner.run(agent, "And now?", previous_response_id=first.last_response_id)
        return first, second

    first, second = _run(server, use)
    assert (first.final_output, second.final_output) == (ANSWER, "Still sunny.")
    assert seen == ["Oslo"]
    asked = scripted_model.requests(model_name)
    _assert_read_the_tool_round(asked[1])
    _assert_read_the_tool_round(asked[2])  # the chain keeps the tool round
    assert _chat(asked[2])[-2:] == [("assistant", ANSWER), ("user", "And now?")]
    sync = openai_client(server)
    [asked_tool, answered] = [sync.responses.retrieve(r.response_id) for r in first.raw_responses]
    assert answered.previous_response_id == asked_tool.id
    assert sync.responses.retrieve(second.last_response_id).previous_response_id == answered.id


def test_a_handoff_to_an_agent_with_a_structured_answer(
    server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """A handoff is a function call the SDK answers itself; the agent it hands off to asks
    for its answer in a JSON schema (`text.format`), which reaches the model."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("transfer_to_forecaster", {})]),
        Reply(json.dumps({"city": "Oslo", "sky": "sunny"})),
    )

    async def use(client: openai.AsyncOpenAI) -> Any:
        model = OpenAIResponsesModel(model=model_name, openai_client=client)
        forecaster = Agent(
            name="forecaster", instructions="Forecast.", output_type=Forecast, model=model
        )
        triage = Agent(name="triage", handoffs=[forecaster], model=model)
        return await Runner.run(triage, "Weather in Oslo?")

    result = _run(server, use)
    assert result.final_output == Forecast(city="Oslo", sky="sunny")
    assert result.last_agent.name == "forecaster"
    handing, answering = scripted_model.requests(model_name)
    assert [t["function"]["name"] for t in handing["tools"]] == ["transfer_to_forecaster"]
    assert _chat(answering)[:2] == [("system", "Forecast."), ("user", "Weather in Oslo?")]
    schema = answering["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["strict"] is True
    assert schema["json_schema"]["schema"]["required"] == ["city", "sky"]
