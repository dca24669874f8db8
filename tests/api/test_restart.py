"""A restart loses nothing: runs that were under way are resumed, waiting runs keep waiting."""

from __future__ import annotations

from support.live import ServerFactory, openai_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.waiting import wait_for_run, wait_until

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def test_a_run_in_progress_when_the_server_dies_is_resumed_at_start(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    # On PostgreSQL the run is taken up once the dead server's lease has lapsed (another
    # process may still hold it, for all a new one knows): a short lease, as the faults use.
    server = start_server(THREADLINE_LEASE_SECONDS="2")
    client = openai_client(server)
    scripted_model.script(model_name, Reply("lost with the server", delay=60), Reply("resumed"))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_until(lambda: scripted_model.requests(model_name), bool, "the model call")

    server.kill()
    server.start()
    done = wait_for_run(client, thread.id, run.id, "completed", "failed")

    assert done.status == "completed"
    replies = [
        m.content[0].text.value  # type: ignore[union-attr]
        for m in client.beta.threads.messages.list(thread.id, order="asc")
        if m.role == "assistant"
    ]
    assert replies == ["resumed"]
    assert len(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data) == 1


def test_a_run_waiting_for_outputs_survives_a_restart(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    server = start_server()
    client = openai_client(server)
    scripted_model.script(model_name, CallTools([ToolCall("lookup", {"q": 1})]), Reply("done"))
    assistant = client.beta.assistants.create(model=model_name, tools=[TOOL])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.required_action is not None

    server.restart()
    waiting = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    [call] = waiting.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}]
    )

    assert waiting.status == "requires_action"
    assert done.status == "completed"
