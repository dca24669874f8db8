"""The code_interpreter tool through the openai SDK and the scripted model, which writes the
code: it runs in the thread's sandbox, the model reads what it printed, the run's step shows
the code and its outputs, variables live on between calls of a thread and not across
threads, files go in and come out as Files, figures reach the answer as images.
"""

from __future__ import annotations

from typing import Any

import openai
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall


def _tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def _run(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Any:
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    return run


def _assistant(client: openai.OpenAI, model_name: str, **fields: Any) -> Any:
    return client.beta.assistants.create(
        model=model_name,
        instructions="You are a personal math tutor. Write and run code to answer questions.",
        tools=[{"type": "code_interpreter"}],
        **fields,
    )


def test_the_math_tutor_runs_code_and_the_step_shows_it(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    code = "import math\nx = math.sqrt(3 * 7 + 4)\nprint('root', x)\nx * 2"
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": code})]),
        Reply("The square root is 5."),
    )
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "I need to solve sqrt(3x+4) for x = 7."}]
    )
    run = _run(client, thread.id, assistant.id)

    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "root 5.0" in read and "10.0" in read
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter"
    assert call.code_interpreter.input == code
    [logs] = call.code_interpreter.outputs
    assert logs.type == "logs" and logs.logs == "root 5.0\n10.0\n"
