"""A settled run's event log is pruned after the retention period; the run itself stays."""

from __future__ import annotations

import httpx
from support.live import ServerFactory, openai_client
from support.waiting import wait_until


def test_old_event_logs_are_pruned_and_runs_kept(
    start_server: ServerFactory, model_name: str
) -> None:
    server = start_server(THREADLINE_EVENT_RETENTION_SECONDS="1")
    client = openai_client(server)
    assistant = client.beta.assistants.create(model=model_name)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    events_url = f"{server.base_url}/threads/{run.thread_id}/runs/{run.id}/events"

    replay = wait_until(
        lambda: httpx.get(events_url, timeout=30).text,
        lambda body: "event: thread.run" not in body,
        "the run's events to be pruned",
    )

    assert replay == "event: done\ndata: [DONE]\n\n"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "completed"
    reply = client.beta.threads.messages.list(run.thread_id, limit=1).data[0]
    assert reply.content[0].text.value == "echo: hi"  # type: ignore[union-attr]
