"""How a run's turns end, through a live server and the openai SDK, on both backends.

Usage: an upstream that sends no usage still has each answer's tokens counted, so a run's
`max_completion_tokens` budget shrinks from one turn to the next. The thread limit: a run on
a thread that holds the most messages a thread may hold fails, clearly and before the model
is asked, since its reply would not fit. A failed model call is logged with the run's id.
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import openai
from support.live import ServerFactory, openai_client
from support.scripted_model import CallTools, Fail, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess
from support.waiting import wait_until

from threadline.domain.limits import MAX_MESSAGES_PER_THREAD

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}
BUDGET = 300
FULL_THREAD = (
    f"The thread has reached its limit of {MAX_MESSAGES_PER_THREAD:,} messages;"
    " the run's reply was not added."
)


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


def _set_message_count(database_url: str, thread_id: str, count: int) -> None:
    """Make the store hold `count` as the thread's number of messages, as if it had them:
    writing 100,000 messages would take the test minutes, and only the count is read."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.execute(
                "UPDATE threads SET message_count = ? WHERE id = ?", (count, thread_id)
            )
        return

    async def update() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE threads SET message_count = $1 WHERE id = $2", count, thread_id
            )
        finally:
            await connection.close()

    asyncio.run(update())


def test_a_run_on_a_full_thread_fails_before_asking_the_model(
    server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one more?"}])
    # The last reply that fits: it makes the thread full.
    _set_message_count(server.database_url, thread.id, MAX_MESSAGES_PER_THREAD - 1)
    scripted_model.script(model_name, Reply("This one fits."))
    last = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert last.status == "completed"
    asked = len(scripted_model.requests(model_name))

    refused = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )

    assert refused.status == "failed" and refused.failed_at is not None
    assert refused.last_error is not None
    assert (refused.last_error.code, refused.last_error.message) == ("server_error", FULL_THREAD)
    assert len(scripted_model.requests(model_name)) == asked  # the model was not asked
    texts = [
        m.content[0].text.value  # type: ignore[union-attr]
        for m in client.beta.threads.messages.list(thread.id, order="asc")
    ]
    assert texts == ["one more?", "This one fits."]
    steps = client.beta.threads.runs.steps.list(run_id=refused.id, thread_id=thread.id)
    assert steps.data == []


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
