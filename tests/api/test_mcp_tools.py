"""MCP tools in the run's loop: a real MCP server on loopback (streamable HTTP), the scripted
model calling its tools, and approvals granted and refused through `submit_tool_outputs`
with `tool_approvals`, as `azure-ai-agents`' `McpTool` sends them. The `openai` client
passes the Azure definitions and the approvals on as they are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from support.errors import sdk_error
from support.mcp_server import McpServer
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with McpServer() as server:
        yield server


def mcp_tool(server: McpServer, *allowed: str) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "mcp", "server_label": "calc", "server_url": server.url}
    if allowed:
        tool["allowed_tools"] = list(allowed)
    return tool


def resources(approval: Any, **headers: str) -> dict[str, Any]:
    return {"mcp": [{"server_label": "calc", "headers": headers, "require_approval": approval}]}


def _raw(client: openai.OpenAI, path: str) -> Any:
    return client.get(path, cast_to=httpx.Response).json()


def _post(client: openai.OpenAI, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, body=body, cast_to=httpx.Response).json()


def _calls(client: openai.OpenAI, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    steps = _raw(client, f"/threads/{thread_id}/runs/{run_id}/steps?order=asc")["data"]
    return [c for s in steps if s["type"] == "tool_calls" for c in s["step_details"]["tool_calls"]]


def _run(
    client: openai.OpenAI, model: str, server: McpServer, approval: Any, **headers: str
) -> tuple[str, dict[str, Any]]:
    agent = client.beta.assistants.create(
        model=model, tools=[mcp_tool(server, "add", "echo_header")]
    )  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "2 + 3?"}])
    run = _post(
        client,
        f"/threads/{thread.id}/runs",
        {"assistant_id": agent.id, "tool_resources": resources(approval, **headers)},
    )
    return thread.id, run


def _settled(client: openai.OpenAI, thread_id: str, run_id: str) -> dict[str, Any]:
    run = client.beta.threads.runs.poll(run_id, thread_id=thread_id)
    return _raw(client, f"/threads/{thread_id}/runs/{run.id}")


def test_a_call_that_needs_no_approval_runs_in_the_run(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("add", {"a": 2, "b": 3})]), Reply("It is 5.")
    )
    thread_id, run = _run(client, model_name, mcp, "never")

    done = _settled(client, thread_id, run["id"])

    assert done["status"] == "completed"
    offered = [t["function"]["name"] for t in scripted_model.requests(model_name)[0]["tools"]]
    assert sorted(offered) == ["add", "echo_header"]  # the allowed tools, not every tool
    [call] = _calls(client, thread_id, run["id"])
    assert call == {
        "id": call["id"],
        "type": "mcp",
        "server_label": "calc",
        "name": "add",
        "arguments": '{"a": 2, "b": 3}',
        "output": "5",
    }


def test_an_approved_call_runs_with_the_approval_s_headers(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("echo_header", {})]), Reply("Done."))
    thread_id, run = _run(client, model_name, mcp, "always", **{"X-Secret": "from-resource"})

    waiting = _settled(client, thread_id, run["id"])

    assert waiting["status"] == "requires_action"
    action = waiting["required_action"]
    assert action["type"] == "submit_tool_approval"
    [pending] = action["submit_tool_approval"]["tool_calls"]
    assert pending == {
        "id": pending["id"],
        "type": "mcp",
        "server_label": "calc",
        "name": "echo_header",
        "arguments": "{}",
    }
    approvals = [{"tool_call_id": pending["id"], "approve": True, "headers": {"X-Secret": "s3"}}]
    _post(
        client,
        f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
        {"tool_approvals": approvals},
    )
    done = _settled(client, thread_id, run["id"])
    assert done["status"] == "completed" and done["required_action"] is None
    [call] = _calls(client, thread_id, run["id"])
    assert call["output"] == "s3"
    assert "approval_headers" not in call and "approved" not in call


def test_a_refused_call_is_not_made_and_the_model_is_told(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("add", {"a": 1, "b": 1})]), Reply("OK."))
    thread_id, run = _run(client, model_name, mcp, {"always": {"tool_names": ["add"]}})
    waiting = _settled(client, thread_id, run["id"])
    [pending] = waiting["required_action"]["submit_tool_approval"]["tool_calls"]

    _post(
        client,
        f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
        {"tool_approvals": [{"tool_call_id": pending["id"], "approve": False}]},
    )

    assert _settled(client, thread_id, run["id"])["status"] == "completed"
    told = scripted_model.requests(model_name)[-1]["messages"][-1]
    assert told["role"] == "tool" and "did not approve" in told["content"]


def test_outputs_for_an_approval_and_approvals_for_unknown_calls_are_refused(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("add", {"a": 1, "b": 1})]), Reply("OK."))
    thread_id, run = _run(client, model_name, mcp, "always")
    waiting = _settled(client, thread_id, run["id"])
    [pending] = waiting["required_action"]["submit_tool_approval"]["tool_calls"]
    path = f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs"

    for body, param in [
        ({"tool_outputs": [{"tool_call_id": pending["id"], "output": "2"}]}, "tool_outputs"),
        (
            {"tool_approvals": [{"tool_call_id": "call_nope", "approve": True}]},
            "tool_approvals[0].tool_call_id",
        ),
        ({"tool_approvals": []}, "tool_approvals"),
    ]:
        with pytest.raises(openai.BadRequestError) as refused:
            client.post(path, body=body, cast_to=httpx.Response)
        assert sdk_error(refused.value, 400)["param"] == param
    assert _raw(client, f"/threads/{thread_id}/runs/{run['id']}")["status"] == "requires_action"


def test_allowed_tools_the_server_lacks_are_refused_and_nothing_is_stored(
    client: openai.OpenAI, model_name: str, mcp: McpServer
) -> None:
    before = client.beta.assistants.list(limit=100).data

    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(
            model=model_name,
            tools=[mcp_tool(mcp, "add", "divide")],  # type: ignore[list-item]
        )

    assert sdk_error(refused.value, 400)["param"] == "tools[0].allowed_tools[1]"
    assert client.beta.assistants.list(limit=100).data == before


def test_an_unreachable_server_leaves_the_model_without_its_tools(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("No tools today."))
    gone = {"type": "mcp", "server_label": "calc", "server_url": "http://127.0.0.1:9/mcp"}
    agent = client.beta.assistants.create(model=model_name, tools=[gone])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=agent.id)

    assert run.status == "completed"
    assert "tools" not in scripted_model.requests(model_name)[0]
