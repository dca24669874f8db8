"""Every status of the run state machine, reached through the openai SDK."""

from __future__ import annotations

import openai
import pytest
from support.live import ServerFactory, openai_client
from support.scripted_model import CallTools, Fail, Reply, ScriptedModelServer, ToolCall
from support.waiting import wait_for_run, wait_until

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def _start(client: openai.OpenAI, model: str, **run_options: object) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model=model, tools=[TOOL])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(
        thread_id=thread.id,
        assistant_id=assistant.id,
        **run_options,  # type: ignore[arg-type]
    )
    assert run.status == "queued"
    return thread.id, run.id


def test_cancel_while_the_model_is_answering(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("too late", delay=60))
    thread_id, run_id = _start(client, model_name)
    wait_for_run(client, thread_id, run_id, "in_progress")
    wait_until(lambda: scripted_model.requests(model_name), bool, "the model call")

    cancelling = client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
    cancelled = wait_for_run(client, thread_id, run_id, "cancelled")

    assert cancelling.status == "cancelling"
    assert cancelled.cancelled_at is not None and cancelled.completed_at is None
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]
    client.beta.threads.messages.create(thread_id, role="user", content="usable again")


def test_cancel_while_waiting_for_tool_outputs(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("lookup", {})]))
    thread_id, run_id = _start(client, model_name)
    wait_for_run(client, thread_id, run_id, "requires_action")

    cancelled = client.beta.threads.runs.cancel(run_id, thread_id=thread_id)

    assert cancelled.status == "cancelled" and cancelled.required_action is None
    [step] = client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id).data
    assert step.status == "cancelled" and step.cancelled_at is not None
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run_id, thread_id=thread_id)


def test_cancel_a_queued_run(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    client = openai_client(start_server(THREADLINE_WORKER_CONCURRENCY="1"))
    scripted_model.script(model_name, Reply("busy", delay=60))
    busy_thread, busy_run = _start(client, model_name)
    wait_for_run(client, busy_thread, busy_run, "in_progress")

    thread_id, run_id = _start(client, model_name)
    cancelled = client.beta.threads.runs.cancel(run_id, thread_id=thread_id)

    assert cancelled.status == "cancelled"
    assert cancelled.started_at is None
    client.beta.threads.runs.cancel(busy_run, thread_id=busy_thread)
    wait_for_run(client, busy_thread, busy_run, "cancelled")


def test_a_full_worker_takes_a_queued_run_once_a_slot_frees(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    client = openai_client(start_server(THREADLINE_WORKER_CONCURRENCY="1"))
    scripted_model.script(model_name, Reply("first", delay=3), Reply("second"))
    first_thread, first_run = _start(client, model_name)
    wait_for_run(client, first_thread, first_run, "in_progress")

    second_thread, second_run = _start(client, model_name)
    queued = client.beta.threads.runs.retrieve(second_run, thread_id=second_thread)

    assert queued.status == "queued"
    assert wait_for_run(client, first_thread, first_run, "completed").completed_at is not None
    second = wait_for_run(client, second_thread, second_run, "completed")
    assert second.started_at is not None and second.started_at >= queued.created_at


def test_a_run_left_waiting_expires_and_frees_the_thread(
    start_server: ServerFactory, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    client = openai_client(start_server(THREADLINE_RUN_EXPIRY_SECONDS="2"))
    scripted_model.script(model_name, CallTools([ToolCall("lookup", {})]), Reply("fine"))
    thread_id, run_id = _start(client, model_name)

    expired = wait_for_run(client, thread_id, run_id, "expired")

    assert expired.required_action is None and expired.expires_at is None
    [step] = client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id).data
    assert step.type == "tool_calls"
    assert step.status == "expired" and step.expired_at is not None
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run_id, thread_id=thread_id, tool_outputs=[{"tool_call_id": "x", "output": ""}]
        )
    client.beta.threads.messages.create(thread_id, role="user", content="again")
    assistant_id = expired.assistant_id
    again = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert again.status == "completed"


@pytest.mark.parametrize(
    ("status", "code"), [(500, "server_error"), (503, "server_error"), (429, "rate_limit_exceeded")]
)
def test_model_errors_fail_the_run_after_retries(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    status: int,
    code: str,
) -> None:
    scripted_model.script(model_name, *[Fail(status, "upstream is down")] * 3)
    thread_id, run_id = _start(client, model_name)

    failed = wait_for_run(client, thread_id, run_id, "failed")

    assert failed.failed_at is not None and failed.last_error is not None
    assert failed.last_error.code == code
    assert "upstream is down" in failed.last_error.message
    assert len(scripted_model.requests(model_name)) == 3
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]


def test_a_bad_prompt_fails_at_once_as_invalid_prompt(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Fail(400, "prompt refused"))
    thread_id, run_id = _start(client, model_name)

    failed = wait_for_run(client, thread_id, run_id, "failed")

    assert failed.last_error is not None and failed.last_error.code == "invalid_prompt"
    assert len(scripted_model.requests(model_name)) == 1


def test_transient_errors_are_retried_honouring_retry_after(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        Fail(503, headers={"Retry-After": "1"}),
        Fail(429, headers={"Retry-After": "1"}),
        Reply("third time lucky"),
    )
    thread_id, run_id = _start(client, model_name)

    done = wait_for_run(client, thread_id, run_id, "completed", "failed")

    assert done.status == "completed"
    assert len(scripted_model.requests(model_name)) == 3
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert reply.content[0].text.value == "third time lucky"  # type: ignore[union-attr]


def test_max_completion_tokens_makes_the_run_incomplete(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("cut off mid", finish_reason="length"))
    thread_id, run_id = _start(client, model_name, max_completion_tokens=20)

    run = wait_for_run(client, thread_id, run_id, "incomplete", "completed")

    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert scripted_model.requests(model_name)[0]["max_tokens"] == 20
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None and reply.incomplete_details.reason == "max_tokens"


def test_a_reply_cut_short_by_the_models_own_limit_makes_the_run_incomplete(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("cut off mid", finish_reason="length"))
    thread_id, run_id = _start(client, model_name)

    run = wait_for_run(client, thread_id, run_id, "incomplete", "completed")

    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert "max_tokens" not in scripted_model.requests(model_name)[0]
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert reply.status == "incomplete"
    assert reply.content[0].text.value == "cut off mid"  # type: ignore[union-attr]


def test_a_prompt_over_max_prompt_tokens_makes_the_run_incomplete(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "word " * 2000}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )

    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_prompt_tokens"
    assert scripted_model.requests(model_name) == []


def test_auto_truncation_keeps_the_newest_messages_that_fit(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant = client.beta.assistants.create(model=model_name, instructions="Be brief.")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"message {i} " + "x" * 300} for i in range(12)]
    )

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=500
    )

    assert run.status == "completed"
    sent = scripted_model.requests(model_name)[0]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    kept = [m["content"].split()[1] for m in sent[1:]]
    assert 0 < len(kept) < 12
    assert kept == [str(i) for i in range(12 - len(kept), 12)]


def test_last_messages_truncation(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(100)]
    )

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 3},
    )

    assert run.truncation_strategy is not None
    assert run.truncation_strategy.last_messages == 3
    sent = scripted_model.requests(model_name)[0]["messages"]
    assert [m["content"] for m in sent] == ["m97", "m98", "m99"]
