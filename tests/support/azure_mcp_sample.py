"""The `azure-ai-agents` MCP sample (`sample_agents_mcp.py`), run against Threadline with only
the endpoint and the credential changed, for `tests/api/test_azure_tools.py`.

It needs azure-ai-agents 1.2.0b6, the first version with `McpTool` and approvals, while the
suite's own pin is 1.1.0: one environment cannot hold both, so the Makefile installs 1.2.0b6
into a folder of its own (`.venv/azure-ai-agents-1.2`) and the test runs this script in a
process with that folder first on `PYTHONPATH`. It prints what it saw as one JSON object on
standard output, for the test to check.

    python azure_mcp_sample.py ENDPOINT CA_FILE KEY MODEL MCP_URL
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import azure.ai.agents
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import (
    ListSortOrder,
    McpTool,
    RequiredMcpToolCall,
    RunStepActivityDetails,
    RunStepMcpToolCall,
    RunStepToolCallDetails,
    SubmitToolApprovalAction,
    ToolApproval,
)
from azure.core.credentials import AccessToken, AccessTokenInfo

# The sample polls every second; a test has no second to spare, and a broken server must
# end the script rather than hang it.
POLL_SECONDS = 0.05
WAIT_LIMIT_SECONDS = 60.0


class StaticCredential:
    """A fixed key in place of Entra ID tokens, as `tests/support/azure_agents.py` passes it."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("endpoint", "ca_file", "key", "model", "mcp_url"):
        parser.add_argument(name)
    args = parser.parse_args()
    summary: dict[str, Any] = {"client_version": azure.ai.agents.__version__}

    agents_client = AgentsClient(
        endpoint=args.endpoint,
        credential=StaticCredential(args.key),  # type: ignore[arg-type]
        connection_verify=args.ca_file,
    )
    summary["api_version"] = agents_client._config.api_version

    # From here on, the sample's own calls.
    mcp_tool = McpTool(server_label="calc", server_url=args.mcp_url, allowed_tools=[])
    mcp_tool.allow_tool("echo_header")
    with agents_client:
        agent = agents_client.create_agent(
            model=args.model,
            name="my-mcp-agent",
            instructions="You are a helpful agent that can use MCP tools to assist users.",
            tools=mcp_tool.definitions,
        )
        summary["agent_tools"] = [tool.as_dict() for tool in agent.tools]
        thread = agents_client.threads.create()
        agents_client.messages.create(
            thread_id=thread.id, role="user", content="What is the SuperSecret header?"
        )

        mcp_tool.update_headers("SuperSecret", "123456")
        mcp_tool.set_approval_mode("always")
        run = agents_client.runs.create(
            thread_id=thread.id, agent_id=agent.id, tool_resources=mcp_tool.resources
        )
        statuses = [run.status]
        approvals: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while run.status in ["queued", "in_progress", "requires_action"]:
            if time.monotonic() > deadline:
                raise SystemExit(f"the run is still {run.status} after {WAIT_LIMIT_SECONDS} s")
            time.sleep(POLL_SECONDS)
            run = agents_client.runs.get(thread_id=thread.id, run_id=run.id)
            if run.status != statuses[-1]:
                statuses.append(run.status)

            if run.status == "requires_action" and isinstance(
                run.required_action, SubmitToolApprovalAction
            ):
                tool_calls = run.required_action.submit_tool_approval.tool_calls
                if not tool_calls:
                    agents_client.runs.cancel(thread_id=thread.id, run_id=run.id)
                    break
                tool_approvals = []
                for tool_call in tool_calls:
                    if isinstance(tool_call, RequiredMcpToolCall):
                        approvals.append(tool_call.as_dict())
                        tool_approvals.append(
                            ToolApproval(
                                tool_call_id=tool_call.id, approve=True, headers=mcp_tool.headers
                            )
                        )
                if tool_approvals:
                    agents_client.runs.submit_tool_outputs(
                        thread_id=thread.id, run_id=run.id, tool_approvals=tool_approvals
                    )
        summary["statuses"] = statuses
        summary["approvals"] = approvals
        summary["status"] = run.status
        summary["last_error"] = run.last_error.as_dict() if run.last_error else None

        # The sample reads the steps both as mappings and as typed models.
        steps, mcp_calls, activities = [], [], []
        run_steps = agents_client.run_steps.list(thread_id=thread.id, run_id=run.id)
        for step in run_steps:
            steps.append({"type": step["type"], "status": step["status"]})
            step_details = step.get("step_details", {})
            if isinstance(step_details, RunStepToolCallDetails):
                for call in step_details.tool_calls:
                    if isinstance(call, RunStepMcpToolCall):
                        mcp_calls.append(call.as_dict())
            if isinstance(step_details, RunStepActivityDetails):
                for activity in step_details.activities:
                    activities.append(
                        {"server_label": activity.server_label, "tools": list(activity.tools)}
                    )
        summary["steps"] = steps
        summary["mcp_calls"] = mcp_calls
        summary["activities"] = activities

        messages = agents_client.messages.list(thread_id=thread.id, order=ListSortOrder.ASCENDING)
        summary["messages"] = [
            [msg.role, msg.text_messages[-1].text.value] for msg in messages if msg.text_messages
        ]
        agents_client.delete_agent(agent.id)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
