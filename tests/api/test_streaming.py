"""Streaming runs over SSE through the openai SDK's event handlers, and raw reconnects."""

from __future__ import annotations

import json

import httpx
import openai
from openai import AssistantEventHandler
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message, Run, Text, TextDelta
from openai.types.beta.threads.runs import ToolCall as StepToolCall
from openai.types.beta.threads.runs import ToolCallDelta
from support.live import ServerFactory, openai_client
from support.scripted_model import CallTools, Fail, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess
from support.sse import parse_sse
from support.waiting import wait_for_run, wait_until

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.text_deltas: list[str] = []
        self.texts_done: list[str] = []
        self.tool_calls_created: list[str] = []
        self.argument_pieces: list[str] = []
        self.messages_done: list[Message] = []

    def on_event(self, event: AssistantStreamEvent) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.text_deltas.append(delta.value or "")

    def on_text_done(self, text: Text) -> None:
        self.texts_done.append(text.value)

    def on_tool_call_created(self, tool_call: StepToolCall) -> None:
        self.tool_calls_created.append(tool_call.id)

    def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: StepToolCall) -> None:
        if delta.type == "function" and delta.function and delta.function.arguments:
            self.argument_pieces.append(delta.function.arguments)

    def on_message_done(self, message: Message) -> None:
        self.messages_done.append(message)


REPLY_EVENTS = [
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.delta",
    "thread.message.delta",
    "thread.message.completed",
    "thread.run.step.completed",
]


def _stream_run(
    client: openai.OpenAI, thread_id: str, assistant_id: str
) -> tuple[Recorder, Run, list[Message]]:
    """Stream a new run to its end through an event handler, as SDK users do."""
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
        messages = stream.get_final_messages() if handler.messages_done else []
        return handler, stream.get_final_run(), messages


def _assistant_and_thread(client: openai.OpenAI, model: str, **fields: object) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model=model, **fields)  # type: ignore[arg-type]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    return assistant.id, thread.id


def test_a_streamed_reply_in_order(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Hello there, friend."))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)

    handler, _, final = _stream_run(client, thread_id, assistant_id)

    assert handler.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        *REPLY_EVENTS,
        "thread.run.completed",
    ]
    assert handler.text_deltas == ["Hello", " there,", " friend."]
    assert handler.texts_done == ["Hello there, friend."]
    assert [m.content[0].text.value for m in final] == ["Hello there, friend."]  # type: ignore[union-attr]
    stored = client.beta.threads.messages.retrieve(final[0].id, thread_id=thread_id)
    assert stored == final[0] == handler.messages_done[0]


# Non-ASCII text, and the line breaks of Unicode (not of SSE) that a client splitting lines
# the Unicode way would cut an event at.
BEYOND_ASCII = 'Olá, café — "naïve" 日本語 🧵 line\u2028para\u2029next\u0085end'


def test_text_beyond_ascii_streams_and_reads_back_whole(
    server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    scripted_model.script(model_name, Reply(BEYOND_ASCII))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)

    handler, run, final = _stream_run(client, thread_id, assistant_id)

    assert run.status == "completed"
    assert "".join(handler.text_deltas) == BEYOND_ASCII
    assert handler.texts_done == [BEYOND_ASCII]
    stored = client.beta.threads.messages.retrieve(final[0].id, thread_id=thread_id)
    assert stored.content[0].text.value == BEYOND_ASCII  # type: ignore[union-attr]
    events_url = f"{server.base_url}/threads/{thread_id}/runs/{run.id}/events"
    with httpx.stream("GET", events_url, timeout=30) as response:
        events = _sse(response)  # lines as httpx splits them
    completed = [json.loads(data) for _, name, data in events if name == "thread.message.completed"]
    assert completed[0]["content"][0]["text"]["value"] == BEYOND_ASCII


def test_text_that_comes_within_the_delta_interval_goes_out_as_one_delta(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    # An interval longer than the reply: the first piece goes out while the model is still
    # writing, the rest together when the model's stream ends.
    client = openai_client(start_server(THREADLINE_DELTA_INTERVAL_MS="60000"))
    scripted_model.script(model_name, Reply("Hello there, friend.", pause=0.5))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)

    handler, run, final = _stream_run(client, thread_id, assistant_id)

    assert run.status == "completed"
    assert handler.text_deltas == ["Hello", " there, friend."]
    assert handler.texts_done == ["Hello there, friend."]
    stored = client.beta.threads.messages.retrieve(final[0].id, thread_id=thread_id)
    assert stored.content[0].text.value == "Hello there, friend."  # type: ignore[union-attr]


def test_create_thread_and_run_streams_the_thread_first(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("One two three"))
    assistant = client.beta.assistants.create(model=model_name)
    handler = Recorder()

    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "count"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()

    assert handler.events[:3] == ["thread.created", "thread.run.created", "thread.run.queued"]
    assert handler.events[-1] == "thread.run.completed"
    assert handler.texts_done == ["One two three"]


def test_function_calling_round_trip_streamed(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools(
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Oslo"})]
        ),
        Reply("Warm and cold"),
    )
    assistant_id, thread_id = _assistant_and_thread(client, model_name, tools=[WEATHER])

    first, run, _ = _stream_run(client, thread_id, assistant_id)

    assert first.events[-1] == "thread.run.requires_action"
    assert "thread.run.step.delta" in first.events
    assert run.status == "requires_action" and run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert first.tool_calls_created == [c.id for c in calls]
    assert json.loads("".join(first.argument_pieces[: len(first.argument_pieces) // 2])) == {
        "city": "Paris"
    }

    second = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread_id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "fine"} for c in calls],
        event_handler=second,
    ) as stream:
        stream.until_done()

    assert second.events == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert second.texts_done == ["Warm and cold"]


def test_a_failed_run_streams_its_failure(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, *[Fail(500, "model exploded")] * 3)
    assistant_id, thread_id = _assistant_and_thread(client, model_name)

    handler, run, _ = _stream_run(client, thread_id, assistant_id)

    assert handler.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.failed",
    ]
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "server_error"


def test_cancel_mid_stream(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("never sent", delay=60))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)
    handler = Recorder()

    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        for event in stream:
            if event.event == "thread.run.in_progress":
                wait_until(lambda: scripted_model.requests(model_name), bool, "the model call")
                client.beta.threads.runs.cancel(event.data.id, thread_id=thread_id)

    assert handler.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.cancelling",
        "thread.run.cancelled",
    ]


def test_a_message_cut_short_by_a_cancel_is_settled_before_the_stream_ends(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("half written", chunks=2, pause=60))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)
    handler = Recorder()

    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                run = stream.current_run
                assert run is not None
                client.beta.threads.runs.cancel(run.id, thread_id=thread_id)

    assert handler.events[-4:] == [
        "thread.run.cancelling",
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
    ]
    [message] = client.beta.threads.messages.list(thread_id, run_id=run.id).data
    assert message.status == "incomplete" and message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_cancelled"
    streamed = "".join(handler.text_deltas)
    assert streamed and handler.texts_done == [streamed]
    assert message.content[0].type == "text" and message.content[0].text.value == streamed


def test_keep_alives_on_a_quiet_stream_leave_the_sdk_reading_events(
    server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    scripted_model.script(model_name, Reply("slow and steady", chunks=2, pause=1))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)
    raw = _raw_stream(server, thread_id, assistant_id)
    assert ": keep-alive\n" in raw.split("event: thread.message.delta", 1)[1]
    assert ": keep-alive\n\n" not in raw  # a blank line after it would end an empty event

    scripted_model.script(model_name, Reply("slow and steady", chunks=2, pause=1))
    handler, run, _ = _stream_run(client, thread_id, assistant_id)

    assert run.status == "completed"
    assert "".join(handler.text_deltas) == "slow and steady"


def _sse(response: httpx.Response) -> list[tuple[int, str, str]]:
    return parse_sse(response.iter_lines())


def _raw_stream(server: ServerProcess, thread_id: str, assistant_id: str) -> str:
    """A new run's stream as the server wrote it."""
    with httpx.stream(
        "POST",
        f"{server.base_url}/threads/{thread_id}/runs",
        json={"assistant_id": assistant_id, "stream": True},
        timeout=30,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.read().decode()


def test_reconnecting_with_last_event_id_gives_exactly_the_missing_events(
    server: ServerProcess, client: openai.OpenAI, model_name: str
) -> None:
    assistant_id, thread_id = _assistant_and_thread(client, model_name)
    everything = parse_sse(_raw_stream(server, thread_id, assistant_id).splitlines())
    run_id = json.loads(everything[0][2])["id"]
    events_url = f"{server.base_url}/threads/{thread_id}/runs/{run_id}/events"

    for cut in (0, 3, len(everything) - 1):
        last_seen = everything[cut][0]
        with httpx.stream(
            "GET", events_url, headers={"Last-Event-ID": str(last_seen)}, timeout=30
        ) as response:
            assert _sse(response) == everything[cut + 1 :]
    with httpx.stream("GET", events_url, timeout=30) as response:
        assert _sse(response) == everything
    with httpx.stream("GET", f"{events_url}?after={everything[2][0]}", timeout=30) as response:
        assert _sse(response) == everything[3:]


def test_a_dropped_client_leaves_a_completed_run(
    server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    scripted_model.script(model_name, Reply("finished without you", delay=0.5))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)
    with httpx.stream(
        "POST",
        f"{server.base_url}/threads/{thread_id}/runs",
        json={"assistant_id": assistant_id, "stream": True},
        timeout=30,
    ) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
    run_id = json.loads(first.removeprefix("data: "))["id"]

    done = wait_for_run(client, thread_id, run_id, "completed")

    assert done.status == "completed"
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert reply.content[0].text.value == "finished without you"  # type: ignore[union-attr]


def test_streaming_an_unknown_run_is_404(server: ServerProcess, client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    response = httpx.get(f"{server.base_url}/threads/{thread.id}/runs/run_nope/events")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_stream_ends_with_its_run_s_last_event_then_one_done(
    server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """Live, and replayed from the log once the run has ended: `done` comes once, last."""
    scripted_model.script(model_name, Reply("Hello there."))
    assistant_id, thread_id = _assistant_and_thread(client, model_name)
    live = _raw_stream(server, thread_id, assistant_id)
    run_id = json.loads(live.split("data: ", 1)[1].split("\n", 1)[0])["id"]
    events_url = f"{server.base_url}/threads/{thread_id}/runs/{run_id}/events"
    with httpx.stream("GET", events_url, timeout=30) as response:
        replayed = response.read().decode()

    for text in (live, replayed):
        frames = text.split("\n\n")
        assert frames[-3].startswith("id: ") and "event: thread.run.completed" in frames[-3]
        assert frames[-2:] == ["event: done\ndata: [DONE]", ""]
        assert text.count("event: done") == 1
