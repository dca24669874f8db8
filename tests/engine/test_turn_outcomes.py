"""How a run's turns end, through a live server and the openai SDK, on both backends.

A failed model call is logged with the run's id.
"""

from __future__ import annotations

from support.live import ServerFactory, openai_client
from support.scripted_model import Fail, ScriptedModelServer
from support.waiting import wait_until


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
