"""The service's tools through the real `azure-ai-agents` clients, as its samples use them:
connected agents through 1.1.0 (the suite's pin), MCP with approvals through 1.2.0b6 (the
first version with `McpTool`), each against a TLS server on a project's endpoint with the
scripted model. The OpenAPI sample's flow is in `test_azure.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import ConnectedAgentTool, ListSortOrder, MessageRole
from support.azure_agents import API_KEY, agents_client
from support.mcp_server import McpServer
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess

# Where the Makefile installs azure-ai-agents 1.2.0b6, beside the venv's own 1.1.0.
AZURE_AGENTS_1_2 = Path(sys.prefix) / "azure-ai-agents-1.2"
MCP_SAMPLE = Path(__file__).parent.parent / "support" / "azure_mcp_sample.py"


@pytest.fixture
def client(tls_server: ServerProcess) -> Iterator[AgentsClient]:
    with agents_client(tls_server, "alpha") as agents:
        yield agents


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with McpServer() as server:
        yield server


def test_the_connected_agent_sample_flow_answers_through_the_other_agent(
    client: AgentsClient, scripted_model: ScriptedModelServer
) -> None:
    main_model, stock_model = scripted_model.unique_name(), scripted_model.unique_name()
    scripted_model.script(stock_model, Reply("The last known price of MSFT is 350."))
    scripted_model.script(
        main_model,
        CallTools([ToolCall("stock_price_bot", {"query": "What is the stock price of MSFT?"})]),
        Reply("Microsoft's stock price is 350."),
    )
    stock_price_agent = client.create_agent(
        model=stock_model,
        name="stock_price_bot",
        instructions="Your job is to get the stock price of a company.",
    )
    connected_agent = ConnectedAgentTool(
        id=stock_price_agent.id,
        name="stock_price_bot",
        description="Gets the stock price of a company",
    )
    agent = client.create_agent(
        model=main_model,
        name="my-agent",
        instructions="You are a helpful assistant; use the connected agents for stock prices.",
        tools=connected_agent.definitions,
    )
    thread = client.threads.create()
    client.messages.create(
        thread_id=thread.id, role=MessageRole.USER, content="What is the stock price of Microsoft?"
    )

    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )

    assert run.status == "completed", run.last_error
    reply = client.messages.get_last_message_text_by_role(
        thread_id=thread.id, role=MessageRole.AGENT
    )
    assert reply is not None and reply.text.value == "Microsoft's stock price is 350."
    # 1.1.0 has no typed model of the call: the step reads as a mapping.
    calls = [
        call
        for step in client.run_steps.list(thread_id=thread.id, run_id=run.id)
        for call in step.get("step_details", {}).get("tool_calls", [])
    ]
    [call] = calls
    assert call["type"] == "connected_agent" and call["id"].startswith("call_")
    details: dict[str, Any] = dict(call["connected_agent"])
    assert details["name"] == "stock_price_bot"
    assert json.loads(details["arguments"]) == {"query": "What is the stock price of MSFT?"}
    assert details["output"] == "The last known price of MSFT is 350."
    assert details["run_id"].startswith("run_") and details["thread_id"].startswith("thread_")
    sub_run = client.runs.get(thread_id=details["thread_id"], run_id=details["run_id"])
    assert sub_run.status == "completed" and sub_run.agent_id == stock_price_agent.id
    client.delete_agent(agent.id)
    client.delete_agent(stock_price_agent.id)
    # The sample prints the conversation after deleting both agents.
    conversation = [
        (msg.role, msg.text_messages[-1].text.value)
        for msg in client.messages.list(thread_id=thread.id, order=ListSortOrder.ASCENDING)
        if msg.text_messages
    ]
    assert conversation == [
        ("user", "What is the stock price of Microsoft?"),
        ("assistant", "Microsoft's stock price is 350."),
    ]


def run_mcp_sample(server: ServerProcess, project: str, model: str, mcp: McpServer) -> Any:
    """The MCP sample's summary, run by azure-ai-agents 1.2.0b6 in a process of its own."""
    if not (AZURE_AGENTS_1_2 / "azure" / "ai" / "agents").is_dir():
        pytest.fail(f"azure-ai-agents 1.2.0b6 is not in {AZURE_AGENTS_1_2}: run `make setup`")
    assert isinstance(server.verify, str)
    path = os.pathsep.join(p for p in (str(AZURE_AGENTS_1_2), os.environ.get("PYTHONPATH")) if p)
    endpoint = f"{server.url}/api/projects/{project}"
    done = subprocess.run(
        [sys.executable, str(MCP_SAMPLE), endpoint, server.verify, API_KEY, model, mcp.url],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_mcp_sample_flow_waits_for_approval_and_calls_with_its_headers(
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
    mcp: McpServer,
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("echo_header", {"name": "SuperSecret"})]),
        Reply("The header is 123456."),
    )

    summary = run_mcp_sample(tls_server, "alpha", model_name, mcp)

    assert summary["client_version"] == "1.2.0b6"
    assert summary["api_version"] == "2025-05-15-preview"
    assert summary["agent_tools"] == [
        {
            "type": "mcp",
            "server_label": "calc",
            "server_url": mcp.url,
            "allowed_tools": ["echo_header"],
        }
    ]
    assert summary["status"] == "completed", summary["last_error"]
    assert "requires_action" in summary["statuses"]
    [approval] = summary["approvals"]
    assert approval == {
        "id": approval["id"],
        "type": "mcp",
        "server_label": "calc",
        "name": "echo_header",
        "arguments": '{"name": "SuperSecret"}',
    }
    # The sample's header reached the MCP server: the tool echoed it. (The sample sends it in
    # the run's resources and again with the approval; test_mcp_tools.py tells them apart.)
    [call] = summary["mcp_calls"]
    assert call == {
        "id": approval["id"],
        "type": "mcp",
        "server_label": "calc",
        "name": "echo_header",
        "arguments": '{"name": "SuperSecret"}',
        "output": "123456",
    }
    assert summary["messages"] == [
        ["user", "What is the SuperSecret header?"],
        ["assistant", "The header is 123456."],
    ]
    offered = scripted_model.requests(model_name)[0]["tools"]
    assert [tool["function"]["name"] for tool in offered] == ["echo_header"]
    # The server's list of tools, as the sample reads it: a step of activities.
    [listing] = summary["activities"]
    assert listing == {"server_label": "calc", "tools": ["echo_header"]}
    assert summary["steps"][-1] == {"type": "activities", "status": "completed"}  # the oldest
    told = scripted_model.requests(model_name)[1]["messages"][-1]
    assert told == {"role": "tool", "tool_call_id": approval["id"], "content": "123456"}
