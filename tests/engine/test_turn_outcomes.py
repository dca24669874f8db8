"""How a run's turns end, through a live server and the openai SDK, on both backends.

Usage: an upstream that sends no usage still has each answer's tokens counted, so a run's
`max_completion_tokens` budget shrinks from one turn to the next. A failed model call is
logged with the run's id.
"""

from __future__ import annotations

import openai
from support.live import ServerFactory, openai_client
from support.scripted_model import CallTools, Fail, Reply, ScriptedModelServer, ToolCall
from support.waiting import wait_until

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}
BUDGET = 300


def test_usage_is_counted_when_the_upstream_sends_none_and_the_budget_shrinks(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("lookup", {"q": "the weather in Lisbon"})], usage=False),
        Reply("It is sunny in Lisbon today.", usage=False),
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[LOOKUP])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=BUDGET
    )
    assert run.status == "requires_action" and run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
    )

    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
    tool_step, message_step = steps.data
    assert tool_step.usage is not None and message_step.usage is not None
    assert tool_step.usage.completion_tokens > 0
    assert message_step.usage.completion_tokens > 0
    assert tool_step.usage.prompt_tokens > 0 and message_step.usage.prompt_tokens > 0
    first, second = scripted_model.requests(model_name)
    assert first["max_tokens"] == BUDGET
    assert second["max_tokens"] == BUDGET - tool_step.usage.completion_tokens
    assert run.usage is not None
    assert run.usage.completion_tokens == (
        tool_step.usage.completion_tokens + message_step.usage.completion_tokens
    )
    assert run.usage.total_tokens == tool_step.usage.total_tokens + message_step.usage.total_tokens


def test_an_empty_answer_without_usage_counts_no_completion_tokens(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("", usage=False))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say nothing."}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    assert run.usage is not None and run.usage.completion_tokens == 0


def test_a_failed_model_call_is_logged_with_the_run_id(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    server = start_server(THREADLINE_PROVIDER_MAX_RETRIES="0")
    client = openai_client(server)
    scripted_model.script(model_name, Fail(400, "the prompt was refused upstream"))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "failed" and run.last_error is not None
    line = wait_until(
        lambda: [
            line
            for line in server.log_path.read_text().splitlines()
            if line.startswith("WARNING") and run.id in line
        ],
        bool,
        "the failed call's log line",
    )[0]
    assert run.last_error.code in line and run.last_error.message in line
