"""The service's tools through the real `azure-ai-agents` client (1.1.0, the suite's pin), as
its samples use them, against a TLS server on a project's endpoint with the scripted model.
The OpenAPI sample's flow is in `test_azure.py`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import ConnectedAgentTool, ListSortOrder, MessageRole
from support.azure_agents import agents_client
from support.azure_agents import tls_server as azure_tls_server
from support.live import Databases
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess


@pytest.fixture(scope="module")
def tls_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("tls")
    with azure_tls_server(databases, folder, scripted_model.base_url) as process:
        yield process


@pytest.fixture
def client(tls_server: ServerProcess) -> Iterator[AgentsClient]:
    with agents_client(tls_server, "alpha") as agents:
        yield agents


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
