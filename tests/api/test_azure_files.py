"""Files, vector stores and file_search through `azure-ai-agents` 1.1.0, as its samples use
them (upload_and_poll, vector_stores.create_and_poll, vector_store_file_batches,
FileSearchTool, attachments, create_and_process, citations), with only the endpoint and
credential changed, on the scripted model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import (
    FilePurpose,
    FileSearchTool,
    ListSortOrder,
    MessageAttachment,
    RunStepFileSearchToolCall,
    RunStepToolCallDetails,
)
from azure.core.exceptions import HttpResponseError
from support.azure_agents import agents_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess

PRODUCT = (
    "# Contoso products\n\n"
    "Smart Eyewear shows turn-by-turn directions on its lenses and lasts 14 hours.\n\n"
    "The Contoso Kettle boils a litre of water in ninety seconds.\n"
)


@pytest.fixture
def client(tls_server: ServerProcess) -> Iterator[AgentsClient]:
    with agents_client(tls_server, "files") as agents:
        yield agents


def _product_file(tmp_path: Path) -> Path:
    path = tmp_path / "product_info.md"
    path.write_text(PRODUCT)
    return path


def test_the_file_search_sample_answers_with_a_citation(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str, tmp_path: Path
) -> None:
    file = client.files.upload_and_poll(
        file_path=str(_product_file(tmp_path)), purpose=FilePurpose.AGENTS
    )
    vector_store = client.vector_stores.create_and_poll(file_ids=[file.id], name="my_vectorstore")
    assert vector_store.status == "completed"
    assert vector_store.file_counts.completed == 1
    file_search = FileSearchTool(vector_store_ids=[vector_store.id])
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["Smart Eyewear features"]})]),
        Reply("It shows directions on its lenses【0:0†product_info.md】."),
    )
    agent = client.create_agent(
        model=model_name,
        name="my-agent",
        instructions="You are a helpful agent",
        tools=file_search.definitions,
        tool_resources=file_search.resources,
    )
    thread = client.threads.create()
    client.messages.create(
        thread_id=thread.id, role="user", content="What feature does Smart Eyewear offer?"
    )
    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )
    assert run.status == "completed", run.last_error

    messages = list(client.messages.list(thread_id=thread.id, order=ListSortOrder.ASCENDING))
    answer = messages[-1]
    assert answer.text_messages[-1].text.value.startswith("It shows directions")
    [citation] = answer.file_citation_annotations
    assert citation.file_citation.file_id == file.id
    assert citation.text == "【0:0†product_info.md】"
    [step] = [
        s
        for s in client.run_steps.list(thread_id=thread.id, run_id=run.id)
        if isinstance(s.step_details, RunStepToolCallDetails)
    ]
    [call] = step.step_details.tool_calls
    assert isinstance(call, RunStepFileSearchToolCall)
    assert call.file_search.results[0].file_id == file.id

    client.vector_stores.delete(vector_store.id)
    client.files.delete(file_id=file.id)
    with pytest.raises(HttpResponseError) as gone:
        client.files.get(file.id)
    assert gone.value.status_code == 404


def test_the_batch_sample_indexes_and_the_agent_takes_the_store(
    client: AgentsClient, model_name: str, tmp_path: Path
) -> None:
    file = client.files.upload_and_poll(
        file_path=str(_product_file(tmp_path)), purpose=FilePurpose.AGENTS
    )
    vector_store = client.vector_stores.create_and_poll(file_ids=[], name="sample_vector_store")
    batch = client.vector_store_file_batches.create_and_poll(
        vector_store_id=vector_store.id, file_ids=[file.id]
    )
    assert batch.status == "completed"
    assert batch.file_counts.completed == 1
    file_search_tool = FileSearchTool()
    file_search_tool.add_vector_store(vector_store.id)
    agent = client.create_agent(
        model=model_name,
        name="my-agent",
        tools=file_search_tool.definitions,
        tool_resources=file_search_tool.resources,
    )
    assert agent.tool_resources.file_search.vector_store_ids == [vector_store.id]
    listed = list(client.vector_store_file_batches.list_files(vector_store.id, batch.id))
    assert [f.id for f in listed] == [file.id]
    content = b"".join(client.files.get_content(file.id))
    assert content.decode() == PRODUCT


def test_an_attachment_with_file_search_makes_the_thread_s_store(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str, tmp_path: Path
) -> None:
    file = client.files.upload_and_poll(
        file_path=str(_product_file(tmp_path)), purpose=FilePurpose.AGENTS
    )
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["kettle boiling time"]})]),
        Reply("Ninety seconds【0:0†product_info.md】."),
    )
    agent = client.create_agent(
        model=model_name, name="attach-agent", tools=FileSearchTool().definitions
    )
    thread = client.threads.create()
    attachment = MessageAttachment(file_id=file.id, tools=FileSearchTool().definitions)
    client.messages.create(
        thread_id=thread.id,
        role="user",
        content="How fast is the kettle?",
        attachments=[attachment],
    )
    [store_id] = client.threads.get(thread.id).tool_resources.file_search.vector_store_ids
    client.vector_store_files.get(vector_store_id=store_id, file_id=file.id)
    store = client.vector_stores.get(store_id)
    while store.status == "in_progress":
        time.sleep(0.02)
        store = client.vector_stores.get(store_id)
    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )
    assert run.status == "completed", run.last_error
    answer = next(iter(client.messages.list(thread_id=thread.id, order=ListSortOrder.DESCENDING)))
    assert [c.file_citation.file_id for c in answer.file_citation_annotations] == [file.id]
