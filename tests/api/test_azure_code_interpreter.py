"""The code interpreter through `azure-ai-agents` 1.1.0, as its samples use it
(CodeInterpreterTool with a file, a file attached to a message, create_and_process, the
answer's image contents and file path annotations, files.save), with only the endpoint and
credential changed, on the scripted model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import (
    CodeInterpreterTool,
    FilePurpose,
    ListSortOrder,
    MessageAttachment,
    RunStepCodeInterpreterToolCall,
    RunStepToolCallDetails,
)
from support.azure_agents import agents_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess

CSV = (
    "sector,company,operating_profit\n"
    "TRANSPORTATION,Contoso Rail,120\n"
    "TRANSPORTATION,Fabrikam Air,80\n"
    "ENERGY,Northwind Power,200\n"
)
CHART = (
    "import pandas as pd, matplotlib.pyplot as plt\n"
    "df = pd.read_csv('/mnt/data/sales.csv')\n"
    "t = df[df.sector == 'TRANSPORTATION']\n"
    "plt.bar(t.company, t.operating_profit)\n"
    "plt.savefig('/mnt/data/chart.png')\n"
    "int(t.operating_profit.sum())"
)


@pytest.fixture
def client(tls_server: ServerProcess) -> Iterator[AgentsClient]:
    with agents_client(tls_server, "code") as agents:
        yield agents


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text(CSV)
    return path


def test_the_code_interpreter_sample_makes_a_chart_and_a_file(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str, tmp_path: Path
) -> None:
    file = client.files.upload_and_poll(file_path=str(_csv(tmp_path)), purpose=FilePurpose.AGENTS)
    code_interpreter = CodeInterpreterTool(file_ids=[file.id])
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": CHART})]),
        Reply("Transportation made 200. The chart: sandbox:/mnt/data/chart.png"),
    )
    agent = client.create_agent(
        model=model_name,
        name="my-agent",
        instructions="You are helpful agent",
        tools=code_interpreter.definitions,
        tool_resources=code_interpreter.resources,
    )
    thread = client.threads.create()
    client.messages.create(
        thread_id=thread.id,
        role="user",
        content="Could you please create bar chart in TRANSPORTATION sector for the operating "
        "profit from the uploaded csv file and provide file to me?",
    )
    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )
    assert run.status == "completed", run.last_error

    steps = list(client.run_steps.list(thread_id=thread.id, run_id=run.id))
    details = steps[-1].step_details
    assert isinstance(details, RunStepToolCallDetails)
    [call] = details.tool_calls
    assert isinstance(call, RunStepCodeInterpreterToolCall)
    assert call.code_interpreter.input == CHART
    assert call.code_interpreter.outputs[0].logs.strip() == "200"  # type: ignore[attr-defined]

    messages = list(client.messages.list(thread_id=thread.id, order=ListSortOrder.ASCENDING))
    answer = messages[-1]
    assert answer.text_messages[-1].text.value.startswith("Transportation made 200")
    [annotation] = answer.file_path_annotations
    assert annotation.text == "sandbox:/mnt/data/chart.png"
    saved = tmp_path / "saved.png"
    file_id = annotation.file_path.file_id
    client.files.save(file_id=file_id, file_name=saved.name, target_dir=str(tmp_path))
    assert saved.read_bytes().startswith(b"\x89PNG")
    # The figure was also left open, so it is shown as an image of the answer.
    [image] = answer.image_contents
    assert client.files.get(image.image_file.file_id).purpose == "assistants_output"


def test_a_file_attached_to_a_message_is_read_by_the_code(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str, tmp_path: Path
) -> None:
    file = client.files.upload_and_poll(file_path=str(_csv(tmp_path)), purpose=FilePurpose.AGENTS)
    scripted_model.script(
        model_name,
        CallTools(
            [ToolCall("code_interpreter", {"code": "len(open('/mnt/data/sales.csv').readlines())"})]
        ),
        Reply("The file has 4 lines."),
    )
    agent = client.create_agent(
        model=model_name,
        name="my-agent",
        instructions="You are helpful agent",
        tools=CodeInterpreterTool().definitions,
    )
    thread = client.threads.create()
    attachment = MessageAttachment(file_id=file.id, tools=CodeInterpreterTool().definitions)
    client.messages.create(
        thread_id=thread.id, role="user", content="How many lines?", attachments=[attachment]
    )
    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )
    assert run.status == "completed", run.last_error
    request = scripted_model.requests(model_name)[1]
    [read] = [m["content"] for m in request["messages"] if m["role"] == "tool"]
    assert read.endswith("4")
