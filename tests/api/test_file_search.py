"""The file_search tool in runs, through the openai SDK and the scripted model: the model's
queries are searched in the assistant's and the thread's stores, it reads the results with
their source markers, and the markers it copies become `file_citation` annotations, in the
message and in the stream.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from support.errors import sdk_error
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess
from support.stored import expire_vector_store

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


def _indexed_store(client: openai.OpenAI, name: str, text: bytes) -> tuple[str, str]:
    store = client.vector_stores.create(name=name)
    done = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=(name, text), poll_interval_ms=50
    )
    assert done.status == "completed", done.last_error
    return store.id, done.id


def _tool_message(request: dict[str, Any]) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "tool")


def test_the_answer_cites_the_file_it_read(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    store_id, file_id = _indexed_store(
        client, "ferry.md", b"# Timetable\n\nThe first ferry to the island leaves at 7:15.\n"
    )
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["first ferry time"]})]),
        Reply("It leaves at 7:15【0:0†ferry.md】."),
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "When does the first ferry leave?"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error

    second = scripted_model.requests(model_name)[1]
    read = _tool_message(second)
    assert read.startswith("【0:0†ferry.md】")
    assert "7:15" in read
    [message] = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    text = message.content[0].text  # type: ignore[union-attr]
    assert text.value == "It leaves at 7:15【0:0†ferry.md】."
    [citation] = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == file_id  # type: ignore[union-attr]
    assert text.value[citation.start_index : citation.end_index] == "【0:0†ferry.md】"

    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search"
    assert call.file_search.ranking_options is not None
    assert call.file_search.results[0].file_id == file_id
    assert call.file_search.results[0].content is None
    with_content = client.beta.threads.runs.steps.list(
        thread_id=thread.id, run_id=run.id, order="asc", include=[INCLUDE]
    )
    shown = with_content.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert "7:15" in shown.file_search.results[0].content[0].text


def test_an_attachment_goes_to_the_thread_s_own_store_and_the_stream_carries_the_citation(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    file_id = client.files.create(
        file=("policy.txt", b"Refunds are paid within 14 days of the return."),
        purpose="assistants",
    ).id
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "How long do refunds take?",
                "attachments": [{"file_id": file_id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    [store_id] = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    store = client.vector_stores.retrieve(store_id)
    assert store.expires_after is not None and store.expires_after.days == 7
    client.vector_stores.files.poll(file_id, vector_store_id=store_id, poll_interval_ms=50)
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["refund time"]})]),
        Reply("Within 14 days【0:0†policy.txt】."),
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[{"type": "file_search"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        final = stream.get_final_messages()
    text = final[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "Within 14 days【0:0†policy.txt】."
    assert [a.file_citation.file_id for a in text.annotations] == [file_id]  # type: ignore[union-attr]


def test_a_run_with_no_store_tells_the_model_and_goes_on(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["anything"]})]),
        Reply("I found nothing."),
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "search"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed"
    read = _tool_message(scripted_model.requests(model_name)[1])
    assert "no vector store" in read


def test_a_store_of_another_project_or_a_missing_one_is_refused(
    client: openai.OpenAI, server: ServerProcess, model_name: str
) -> None:
    other = httpx.post(
        f"{server.url}/api/projects/beta/vector_stores?api-version=v1", json={}, timeout=30
    ).json()["id"]
    before = [a.id for a in client.beta.assistants.list(limit=100)]
    for store_id in (other, "vs_missing"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.beta.assistants.create(
                model=model_name,
                tools=[{"type": "file_search"}],
                tool_resources={"file_search": {"vector_store_ids": [store_id]}},
            )
        error = sdk_error(refused.value, 400)
        assert error["param"] == "tool_resources.file_search.vector_store_ids[0]"
    assert [a.id for a in client.beta.assistants.list(limit=100)] == before


def test_an_inline_store_is_made_with_the_assistant(client: openai.OpenAI, model_name: str) -> None:
    file_id = client.files.create(file=("a.txt", b"alpha beta"), purpose="assistants").id
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [file_id]}]}},
    )
    [store_id] = assistant.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    done = client.vector_stores.files.poll(file_id, vector_store_id=store_id, poll_interval_ms=50)
    assert done.status == "completed"


def test_an_unknown_include_value_is_refused(client: openai.OpenAI, model_name: str) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            include=["step_details.everything"],  # type: ignore[list-item]
        )
    assert sdk_error(refused.value, 400)["param"] == "include[]"
    assert client.beta.threads.runs.list(thread_id=thread.id).data == []


def test_tool_choice_file_search_makes_the_model_call_it(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    store_id, _ = _indexed_store(client, "forced.md", b"The bell rings at noon.")
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["bell"]})]),
        Reply("At noon."),
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "when?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "file_search"},
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    first, second = scripted_model.requests(model_name)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "file_search"}}
    # Once the tool has answered, the model chooses freely.
    assert second.get("tool_choice") in (None, "auto")


def test_an_expired_thread_store_is_not_searched_and_the_model_is_told(
    client: openai.OpenAI,
    server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    file_id = client.files.create(file=("old.txt", b"Stale facts."), purpose="assistants").id
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "anything?",
                "attachments": [{"file_id": file_id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    [store_id] = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    client.vector_stores.files.poll(file_id, vector_store_id=store_id, poll_interval_ms=50)
    expire_vector_store(server.database_url, store_id)
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["facts"]})]),
        Reply("Nothing to go on."),
    )
    assistant = client.beta.assistants.create(model=model_name, tools=[{"type": "file_search"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    read = _tool_message(scripted_model.requests(model_name)[1])
    assert "expired" in read
    assert "Stale facts" not in read
